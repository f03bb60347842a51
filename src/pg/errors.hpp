/*
 * errors.hpp: this project's own SQLSTATEs (class 53, insufficient resources) and the
 * catching wrapper that keeps C++ exceptions out of PostgreSQL's C frames.
 */
#pragma once

#include "pg/pg_includes.hpp"

#include <new>

/* The minimum number of workers was not reached after every attempt. */
#define ERRCODE_PG_INSUFFICIENT_WORKERS MAKE_SQLSTATE('5', '3', 'G', '0', '1')
/* The target exceeds what the server's configuration can ever give. */
#define ERRCODE_PG_TARGET_UNREACHABLE MAKE_SQLSTATE('5', '3', 'G', '0', '2')
/* The planner planned fewer workers than the target: retrying cannot help. */
#define ERRCODE_PG_PLANNED_FEWER MAKE_SQLSTATE('5', '3', 'G', '0', '3')
/* The statement has no parallel plan at all. */
#define ERRCODE_PG_NO_PARALLEL_PLAN MAKE_SQLSTATE('5', '3', 'G', '0', '4')
/* No run slot or background worker slot is free to start the run. */
#define ERRCODE_PG_NO_RUN_SLOT MAKE_SQLSTATE('5', '3', 'G', '0', '5')

namespace pgguarantee {

/*
 * Runs f, turning any C++ exception into a PostgreSQL ERROR with a proper SQLSTATE.  f
 * itself may ereport: its longjmp passes through here untouched, so f must keep objects
 * with destructors out of frames that can ereport.
 */
template <typename F>
inline auto CatchingCall(F &&f) -> decltype(f()) {
    const char *what = nullptr;
    bool out_of_memory = false;
    try {
        return f();
    } catch (const std::bad_alloc &) {
        out_of_memory = true;
    } catch (const std::exception &e) {
        what = e.what();
    } catch (...) {
        what = "unknown exception";
    }
    /* Outside the catch blocks: the exception objects are gone before we longjmp. */
    if (out_of_memory)
        ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
                        errmsg("parallel_guarantee ran out of memory")));
    ereport(ERROR, (errcode(ERRCODE_SYSTEM_ERROR),
                    errmsg("parallel_guarantee failed unexpectedly: %s", what)));
    pg_unreachable();
}

}  // namespace pgguarantee
