/*
 * compat.hpp: what differs between the PostgreSQL majors the extension is built for, in
 * one place.  Included at the end of pg_includes.hpp, so every PostgreSQL-facing source
 * has it.
 *
 * Compiled without a warning, and tested, against 15 (Debian 12's headers), 17 (Debian
 * trixie's) and 18 (Debian sid's): scripts/pg_matrix.sh.  No 14 or 16 headers were at
 * hand: the "< 150000" branches elsewhere in the sources have never been compiled, and the
 * ">= 160000" ones, here and elsewhere, only within the 17 and 18 builds.
 */
#pragma once

/* Included by pg_includes.hpp after PostgreSQL's headers; nothing of ours before them. */

namespace pgguarantee {

/*
 * True if this backend holds the lock in exactly this mode.  PostgreSQL 17 added the
 * argument orstronger (true: this mode or a stronger one); false keeps the exact mode.
 */
inline bool LockHeldByMeExactly(const LOCKTAG *tag, LOCKMODE mode) {
#if PG_VERSION_NUM >= 170000
    return LockHeldByMe(tag, mode, false);
#else
    return LockHeldByMe(tag, mode);
#endif
}

/*
 * The next datum of a sort: call this, not tuplesort_getdatum.  PostgreSQL 16 added the
 * argument copy (17's and 18's headers have it); true keeps what 15 always did: a
 * by-reference value is a palloc'd copy in the caller's memory context, so it stays valid
 * after the next call.
 */
inline bool TuplesortGetDatum(Tuplesortstate *state, bool forward, Datum *value, bool *isnull,
                              Datum *abbrev) {
#if PG_VERSION_NUM >= 160000
    return tuplesort_getdatum(state, forward, true, value, isnull, abbrev);
#else
    return tuplesort_getdatum(state, forward, value, isnull, abbrev);
#endif
}

/*
 * The wait events a run's processes show in pg_stat_activity while they wait: from
 * PostgreSQL 17 custom events of the Extension class, named; on 15 and 16 the class's one
 * event, "Extension".
 */
enum class RunWait { kQueue, kRetryDelay, kCaller };

inline uint32 RunWaitEvent(RunWait which) {
#if PG_VERSION_NUM >= 170000
    static uint32 events[3] = {0, 0, 0};
    static const char *const names[3] = {"ParallelGuaranteeQueue", "ParallelGuaranteeRetryDelay",
                                          "ParallelGuaranteeRun"};
    int i = static_cast<int>(which);
    if (events[i] == 0) events[i] = WaitEventExtensionNew(names[i]);
    return events[i];
#else
    (void) which;
    return PG_WAIT_EXTENSION;
#endif
}

}  // namespace pgguarantee

/*
 * The module's magic block.  PostgreSQL 18 records a name and version that
 * pg_get_loaded_modules() shows (its plain PG_MODULE_MAGIC leaves them unset, and -Wextra
 * warns of the missing initializers).  PARALLEL_GUARANTEE_VERSION comes from the control
 * file, through the Makefile.
 */
#ifndef PARALLEL_GUARANTEE_VERSION
#error "PARALLEL_GUARANTEE_VERSION is not defined: build with the project's Makefile"
#endif
#if PG_VERSION_NUM >= 180000
#define PARALLEL_GUARANTEE_MODULE_MAGIC \
    PG_MODULE_MAGIC_EXT(.name = "parallel_guarantee", .version = PARALLEL_GUARANTEE_VERSION)
#else
#define PARALLEL_GUARANTEE_MODULE_MAGIC PG_MODULE_MAGIC
#endif
