# parallel_guarantee: PGXS build.  `make && make install`, then `make installcheck`
# (pg_regress and isolation specs against a temporary instance with our config).

EXTENSION   = parallel_guarantee
EXTVERSION  = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(EXTENSION).control)
MODULE_big  = parallel_guarantee
DATA        = $(wildcard sql/$(EXTENSION)--*.sql)

CORE_SRCS   = $(wildcard src/core/*.cpp)
PG_SRCS     = $(wildcard src/pg/*.cpp)
OBJS        = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

PG_CONFIG  ?= pg_config

# Tests against throwaway instances started with test/pg.conf (shared_preload_libraries).
# pg_regress: sql/<test>.sql with expected/<test>.out; isolation: test/isolation/specs.
REGRESS        = guarantee arguments statement_errors identity
REGRESS_OPTS   = --outputdir=test/out/regress --temp-instance=$(CURDIR)/test/out/tmp_regress \
                 --temp-config=$(CURDIR)/test/pg.conf --load-extension=$(EXTENSION)
ISOLATION      = $(basename $(notdir $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/out/isolation \
                 --temp-instance=$(CURDIR)/test/out/tmp_isolation \
                 --temp-config=$(CURDIR)/test/pg.conf --load-extension=$(EXTENSION)

PG_CPPFLAGS = -I$(CURDIR)/src
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-register
SHLIB_LINK  = -lstdc++

# The JIT bitcode step compiles C++ with clang and without PG_CXXFLAGS; we ship no bitcode.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS adds -Wmissing-prototypes etc. for C only; keep C++ builds quiet and strict.
override CXXFLAGS := $(filter-out -Wmissing-format-attribute,$(CXXFLAGS))

# Each layer on its own, so one failing layer does not hide the others.
.PHONY: regresscheck isolationcheck unit
regresscheck:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
isolationcheck:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
unit:
	$(MAKE) -C test/unit run
