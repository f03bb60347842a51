/*
 * policy.hpp: the pure C++ core of parallel_guarantee.
 *
 * Decisions that do not need a server: argument checks, whether a target degree can ever
 * be reached, what to do when a Gather launches k of its planned workers, and the text of
 * the messages a DBA reads.  Nothing here includes a PostgreSQL header, so the Catch2 unit
 * tests link this file alone.  Nothing here throws except std::bad_alloc.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace pgguarantee {

/* Limits on the arguments; generous, but they keep arithmetic and DSM sizes bounded. */
constexpr int kMaxTargetWorkers = 1024;          /* PostgreSQL's MAX_PARALLEL_WORKER_LIMIT */
constexpr int kMaxAttempts = 100;
constexpr int64_t kMaxRetryDelayMs = 24LL * 3600 * 1000;

/* What the caller asked for. */
struct RunOptions {
    int target_workers = 4;
    int min_workers = 2;
    int max_attempts = 5;
    int64_t retry_delay_ms = 2000;
};

/* A user error found by the core: which argument, a message and a hint, as full sentences. */
struct Problem {
    std::string argument;
    std::string message;
    std::string detail;
    std::string hint;
};

/* Checks the numeric arguments; nullopt when they make sense together. */
std::optional<Problem> ValidateOptions(const RunOptions &options);

/* What the server can give, read by the PostgreSQL side. */
struct Capacity {
    int max_parallel_workers = 8;    /* the configured (not per-session) value */
    int max_worker_processes = 8;
    int other_background_workers = 0; /* non-parallel background workers running now */
};

/* Most parallel workers one statement can ever get, once the worker that runs it has its slot. */
int ParallelCeiling(const Capacity &capacity);

/* nullopt when the target is reachable at all; otherwise why not and what to change. */
std::optional<Problem> CheckReachable(const RunOptions &options, const Capacity &capacity);

/* What to do after a Gather launched `launched` workers during attempt `attempt` (1-based). */
enum class LaunchVerdict {
    kTargetMet,        /* launched >= target: let it run */
    kAcceptDegraded,   /* last attempt, launched >= minimum: let it run, report degraded */
    kAbandonAndRetry,  /* short with attempts left: abandon this attempt */
    kAbandonAndFail,   /* last attempt and below the minimum: abandon and fail */
};

LaunchVerdict JudgeLaunch(const RunOptions &options, int attempt, int launched);

/* How an attempt ended; recorded per attempt and listed in error details. */
enum class AttemptOutcome : int32_t {
    kNone = 0,
    kTargetMet,
    kDegraded,
    kAbandoned,        /* short, retried */
    kFailedShort,      /* short on the last attempt, below the minimum */
    kStatementError,   /* the statement itself failed: not retried */
    kCancelled,        /* the caller cancelled or went away */
    kPlannedFewer,     /* the planner planned fewer workers than the target */
    kNoParallelPlan,   /* the plan has no Gather at all */
    kTerminated,       /* the run's worker was terminated during the attempt */
    kErrorRetried,     /* the statement failed with a SQLSTATE listed in retry_sqlstates: retried */
};

/* At most this many SQLSTATEs in retry_sqlstates. */
constexpr int kMaxRetrySqlstates = 16;

/* True for a SQLSTATE as PostgreSQL writes them: five characters, each 0-9 or A-Z. */
bool IsSqlstate(const std::string &text);

const char *OutcomeName(AttemptOutcome outcome);

/* One attempt as the worker records it in shared memory (plain data). */
struct AttemptRecord {
    int32_t planned = -1;       /* -1: no Gather seen */
    int32_t launched = -1;
    AttemptOutcome outcome = AttemptOutcome::kNone;
    int64_t waited_ms = 0;      /* time waited before the attempt started */
    int64_t duration_us = 0;    /* start of the attempt to its end (or abandonment) */
};

/* "attempt 1: 1 of 4 workers launched (4 planned), abandoned after 3.1 ms; attempt 2: ..." */
std::string DescribeAttempts(const AttemptRecord *records, int count, int target);

/* The log lines of the client-side retry loop this extension replaces, in our wording. */
std::string AttemptStartedMessage(int64_t run_id, int attempt, const RunOptions &options);
std::string LaunchMessage(int64_t run_id, int attempt, const RunOptions &options, int planned,
                          int launched, LaunchVerdict verdict);

/* Waiting for free worker slots before an attempt. */
std::string WaitingMessage(int64_t run_id, int attempt, int need, int free_workers, int position);
std::string AdmittedMessage(int64_t run_id, int attempt, int need, double waited_ms);
/* max_wait ended the wait: the attempt about to start is the last, though max_attempts allowed more. */
std::string DeadlineMessage(int64_t run_id, int attempt, int max_attempts, double waited_ms,
                            int64_t max_wait_ms);

/*
 * The client-side retry loop this extension replaces (run, wait, count the launched workers
 * in pg_stat_activity, cancel, clean up, sleep, retry) looks at the workers this long after
 * each start.
 */
constexpr int64_t kClientLoopCheckMs = 1000;

/*
 * The default bound on waiting for slots (max_wait => NULL): 30 minutes, or longer when the
 * client loop would reach its last attempt later ((max_attempts - 1) * (retry_delay + its
 * 1-second check)), at most a day.  A nightly step would rather wait for its workers than
 * spend its attempts or run degraded; 30 minutes is inside a nightly window, and a stuck
 * holder of the workers still ends in an error that names max_wait.
 */
constexpr int64_t kDefaultMaxWaitMs = 30LL * 60 * 1000;
int64_t DefaultMaxWaitMs(const RunOptions &options);

/* Final status of a run, as returned in the result row. */
enum class RunStatus : int32_t { kRunning = 0, kTargetMet, kDegraded, kFailed };
const char *StatusName(RunStatus status);

}  // namespace pgguarantee
