/*
 * errors.hpp: this project's own SQLSTATEs (class 53, insufficient resources) and the
 * catching wrapper that keeps C++ exceptions out of PostgreSQL's C frames.
 */
#pragma once

#include "pg/pg_includes.hpp"

#include <new>
#include <string>

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
/* The role already has as many runs in progress as its share allows. */
#define ERRCODE_PG_ROLE_LIMIT MAKE_SQLSTATE('5', '3', 'G', '0', '6')

namespace pgguarantee {

/*
 * The C++ wall.  Runs f, turning any C++ exception into a PostgreSQL ERROR with a proper
 * SQLSTATE, so that none ever unwinds into PostgreSQL's C frames.  Every function PostgreSQL
 * calls (SQL-callable functions, hooks, callbacks, the worker's main) goes through it, and so
 * does every call of the pure C++ core from code that runs under PostgreSQL's frames (see
 * CoreText).  f itself may ereport: its longjmp passes through here untouched, so f must keep
 * objects with destructors out of frames that can ereport.
 */
template <typename F>
inline auto CatchingCall(F &&f) -> decltype(f()) {
    /* The message is copied out while the exception lives: e.what() dies with it. */
    char what[256];
    bool out_of_memory = false;
    what[0] = '\0';
    try {
        return f();
    } catch (const std::bad_alloc &) {
        out_of_memory = true;
    } catch (const std::exception &e) {
        strlcpy(what, e.what(), sizeof what);
    } catch (...) {
        strlcpy(what, "unknown exception", sizeof what);
    }
    /* Outside the catch blocks: the exception objects are gone before we longjmp. */
    if (out_of_memory)
        ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
                        errmsg("parallel_guarantee ran out of memory")));
    ereport(ERROR, (errcode(ERRCODE_SYSTEM_ERROR),
                    errmsg("parallel_guarantee failed unexpectedly: %s", what)));
    pg_unreachable();
}

/*
 * Copies a C++ string into palloc memory without ever raising an error, so the
 * std::string can die before anything that may ereport runs.
 */
char *PallocCopy(const std::string &text);

/*
 * Calls a function of the pure core that builds a text (a NOTICE, a detail) and returns it
 * in palloc memory.  An exception (out of memory) becomes an ERROR right here, so it never
 * unwinds through a PG_TRY block or an executor frame around the caller.
 */
template <typename F>
inline char *CoreText(F &&f) {
    return CatchingCall([&]() { return PallocCopy(f()); });
}

/* A problem found by the pure core, as palloc'd texts (message null: no problem). */
struct ProblemText {
    const char *message;
    const char *detail;   /* null: none */
    const char *hint;
};

template <typename F>
inline ProblemText CoreProblem(F &&f) {
    return CatchingCall([&]() -> ProblemText {
        auto problem = f();
        if (!problem) return ProblemText{nullptr, nullptr, nullptr};
        return ProblemText{PallocCopy(problem->message),
                           problem->detail.empty() ? nullptr : PallocCopy(problem->detail),
                           PallocCopy(problem->hint)};
    });
}

}  // namespace pgguarantee

/*
 * Declares the SQL-callable C function `name` (its PG_FUNCTION_INFO_V1 and its extern "C"
 * symbol) as the expression that follows, evaluated with fcinfo behind the C++ wall.
 */
#define PG_GUARANTEE_FUNCTION(name, ...)                                               \
    extern "C" {                                                                       \
    PG_FUNCTION_INFO_V1(name);                                                         \
    }                                                                                  \
    extern "C" Datum name(PG_FUNCTION_ARGS) {                                          \
        return pgguarantee::CatchingCall([&]() -> Datum { return __VA_ARGS__; });      \
    }
