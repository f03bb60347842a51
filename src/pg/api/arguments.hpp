/*
 * arguments.hpp: reading and checking what a caller asks for, before anything runs.
 */
#pragma once

#include "core/policy.hpp"
#include "pg/parallel_guarantee.hpp"

namespace pgguarantee {

/*
 * Where each argument is: run_with_parallel_guarantee and submit_parallel_guarantee take
 * the same arguments, but submit has no raise_on_failure (nobody waits to see an error).
 */
struct ArgLayout {
    int statement, cleanup, target, min, attempts, delay, force, raise, wait, max_wait, priority,
        label, retry_sqlstates;
};
constexpr ArgLayout kRunArgs{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
constexpr ArgLayout kSubmitArgs{0, 1, 2, 3, 4, 5, 6, -1, 7, 8, 9, 10, 11};

/* Everything a run needs, read from the arguments and checked. */
struct RunRequest {
    char *statement;
    char *cleanup;
    char *label;
    RunOptions options;
    bool force_workers;
    bool raise_on_failure;
    bool wait_for_slots;
    int64 max_wait_ms;
    int32 priority;
    StatementKind kind;
    /* Chunked runs. */
    RunMode mode;
    int64 resume_run_id;
    Oid resume_role;            /* set by StartRun once the caller may resume the run */
    int32 chunk_size, max_retries, max_skipped, chunk_workers, notice_every;
    /* SQLSTATEs retried like a short launch (retry_sqlstates), as MAKE_SQLSTATE codes. */
    int32 retry_sqlstates[kMaxRetrySqlstates];
    int32 n_retry_sqlstates;
};

/* Raised when the module was not preloaded. */
void RequirePreloaded();
/* Checks shared by every entry point that starts a run. */
void CheckCanStartRun(const char *function);
/* run_with_parallel_guarantee / submit_parallel_guarantee's arguments, checked. */
RunRequest ReadRequest(FunctionCallInfo fcinfo, const ArgLayout &l);
/* run_in_chunks / submit_chunks' arguments (resume: resume_chunks'), checked. */
RunRequest ReadChunkRequest(FunctionCallInfo fcinfo, bool resume);
/* An interval argument in milliseconds: -1 if negative, beyond 1 day: 1 day + 1 ms. */
int64 IntervalToMillis(const Interval *interval);

}  // namespace pgguarantee
