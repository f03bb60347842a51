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

# Tests against a throwaway instance (see test/pg.conf).
TEMP_INSTANCE = $(CURDIR)/test/tmp_instance
REGRESS       = $(basename $(notdir $(wildcard test/sql/*.sql)))
REGRESS_OPTS  = --inputdir=test --outputdir=test/out --temp-instance=$(TEMP_INSTANCE) \
                --temp-config=$(CURDIR)/test/pg.conf --load-extension=$(EXTENSION)
ISOLATION      = $(basename $(notdir $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/out \
                 --temp-instance=$(CURDIR)/test/tmp_isolation --temp-config=$(CURDIR)/test/pg.conf \
                 --load-extension=$(EXTENSION)

PG_CPPFLAGS = -I$(CURDIR)/src
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-register
SHLIB_LINK  = -lstdc++

# The JIT bitcode step compiles C++ with clang and without PG_CXXFLAGS; we ship no bitcode.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS adds -Wmissing-prototypes etc. for C only; keep C++ builds quiet and strict.
override CXXFLAGS := $(filter-out -Wmissing-format-attribute,$(CXXFLAGS))

.PHONY: unit
unit:
	$(MAKE) -C test/unit
