/*
 * policy.cpp: the pure C++ core (see policy.hpp).  No PostgreSQL header is included here.
 */
#include "core/policy.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#if defined(POSTGRES_H)
static_assert(false, "the pure C++ core must not see PostgreSQL headers");
#endif

namespace pgguarantee {

namespace {

std::string Format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

std::string Format(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return std::string();
    return std::string(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
}

Problem MakeProblem(const char *argument, std::string message, std::string hint) {
    Problem p;
    p.argument = argument;
    p.message = std::move(message);
    p.hint = std::move(hint);
    return p;
}

}  // namespace

std::optional<Problem> ValidateOptions(const RunOptions &o) {
    if (o.target_workers < 1 || o.target_workers > kMaxTargetWorkers)
        return MakeProblem("target_workers",
                           Format("target_workers must be between 1 and %d, not %d",
                                  kMaxTargetWorkers, o.target_workers),
                           "target_workers is the number of parallel workers the statement must get.");
    if (o.min_workers < 0)
        return MakeProblem("min_workers",
                           Format("min_workers must not be negative, not %d", o.min_workers),
                           "Use 0 to accept any number of workers on the last attempt.");
    if (o.min_workers > o.target_workers)
        return MakeProblem("min_workers",
                           Format("min_workers (%d) must not exceed target_workers (%d)",
                                  o.min_workers, o.target_workers),
                           "min_workers is the fewest workers accepted on the last attempt.");
    if (o.max_attempts < 1 || o.max_attempts > kMaxAttempts)
        return MakeProblem("max_attempts",
                           Format("max_attempts must be between 1 and %d, not %d", kMaxAttempts,
                                  o.max_attempts),
                           "An attempt is one start of the statement; 1 means no retry.");
    if (o.retry_delay_ms < 0)
        return MakeProblem("retry_delay", "retry_delay must not be negative",
                           "Use '0' to retry at once.");
    if (o.retry_delay_ms > kMaxRetryDelayMs)
        return MakeProblem("retry_delay", "retry_delay must not exceed 1 day",
                           "A retry delay is the pause between two attempts.");
    return std::nullopt;
}

int ParallelCeiling(const Capacity &c) {
    /* Every parallel worker is also a background worker; one more runs the statement, so it
     * is subtracted here and the result counts parallel workers only. */
    int by_processes = c.max_worker_processes - c.other_background_workers - 1;
    return std::max(0, std::min(c.max_parallel_workers, by_processes));
}

std::optional<Problem> CheckReachable(const RunOptions &o, const Capacity &c) {
    if (o.target_workers > c.max_parallel_workers)
        return MakeProblem(
            "target_workers",
            Format("target_workers %d can never be reached: max_parallel_workers is %d",
                   o.target_workers, c.max_parallel_workers),
            Format("Raise max_parallel_workers to at least %d in postgresql.conf (a reload is "
                   "enough), or lower target_workers.",
                   o.target_workers));
    int by_processes = c.max_worker_processes - c.other_background_workers - 1;
    if (o.target_workers > by_processes) {
        Problem p = MakeProblem(
            "target_workers",
            Format("target_workers %d can never be reached: max_worker_processes (%d) leaves room "
                   "for at most %d parallel workers",
                   o.target_workers, c.max_worker_processes, std::max(0, by_processes)),
            Format("Raise max_worker_processes to at least %d (this needs a server restart), or "
                   "lower target_workers.",
                   o.target_workers + c.other_background_workers + 1));
        p.detail = Format("%d background worker slot%s %s held by other background workers "
                          "(such as the logical replication launcher or pg_cron), and one is "
                          "needed for the worker that runs the statement.",
                          c.other_background_workers, c.other_background_workers == 1 ? "" : "s",
                          c.other_background_workers == 1 ? "is" : "are");
        return p;
    }
    return std::nullopt;
}

LaunchVerdict JudgeLaunch(const RunOptions &o, int attempt, int launched) {
    if (launched >= o.target_workers) return LaunchVerdict::kTargetMet;
    if (attempt < o.max_attempts) return LaunchVerdict::kAbandonAndRetry;
    if (launched >= o.min_workers) return LaunchVerdict::kAcceptDegraded;
    return LaunchVerdict::kAbandonAndFail;
}

const char *OutcomeName(AttemptOutcome outcome) {
    switch (outcome) {
        case AttemptOutcome::kNone: return "unfinished";
        case AttemptOutcome::kTargetMet: return "target met";
        case AttemptOutcome::kDegraded: return "degraded";
        case AttemptOutcome::kAbandoned: return "abandoned";
        case AttemptOutcome::kFailedShort: return "below minimum";
        case AttemptOutcome::kStatementError: return "statement error";
        case AttemptOutcome::kCancelled: return "cancelled";
        case AttemptOutcome::kPlannedFewer: return "planned fewer than target";
        case AttemptOutcome::kNoParallelPlan: return "no parallel plan";
        case AttemptOutcome::kTerminated: return "worker terminated";
        case AttemptOutcome::kErrorRetried: return "statement error, retried";
    }
    return "unknown";
}

const char *StatusName(RunStatus status) {
    switch (status) {
        case RunStatus::kRunning: return "running";
        case RunStatus::kTargetMet: return "target_met";
        case RunStatus::kDegraded: return "degraded";
        case RunStatus::kFailed: return "failed";
    }
    return "unknown";
}

std::string DescribeAttempts(const AttemptRecord *records, int count, int target) {
    std::string out;
    for (int i = 0; i < count; i++) {
        const AttemptRecord &r = records[i];
        if (!out.empty()) out += "; ";
        out += Format("attempt %d: ", i + 1);
        if (r.launched >= 0)
            out += Format("%d of %d workers launched (%d planned), ", r.launched, target,
                          r.planned);
        else if (r.planned >= 0)
            out += Format("%d workers planned, ", r.planned);
        out += OutcomeName(r.outcome);
        out += Format(" after %.1f ms", static_cast<double>(r.duration_us) / 1000.0);
    }
    if (!out.empty()) out += ".";
    return out;
}

std::string AttemptStartedMessage(int64_t run_id, int attempt, const RunOptions &o) {
    return Format("run %lld: attempt %d/%d started, target %d, minimum %d",
                  static_cast<long long>(run_id), attempt, o.max_attempts, o.target_workers,
                  o.min_workers);
}

std::string LaunchMessage(int64_t run_id, int attempt, const RunOptions &o, int planned,
                          int launched, LaunchVerdict verdict) {
    const char *what = "";
    switch (verdict) {
        case LaunchVerdict::kTargetMet: what = "target reached"; break;
        case LaunchVerdict::kAcceptDegraded: what = "last attempt, minimum met: continuing degraded"; break;
        case LaunchVerdict::kAbandonAndRetry: what = "short of target: abandoned, will retry"; break;
        case LaunchVerdict::kAbandonAndFail: what = "below minimum on the last attempt: abandoned"; break;
    }
    return Format("run %lld: attempt %d/%d launched %d of %d planned workers (target %d), %s",
                  static_cast<long long>(run_id), attempt, o.max_attempts, launched, planned,
                  o.target_workers, what);
}

std::string WaitingMessage(int64_t run_id, int attempt, int need, int free_workers, int position) {
    return Format("run %lld: attempt %d waits for %d free parallel workers (%d free now, "
                  "position %d in the queue)",
                  static_cast<long long>(run_id), attempt, need, free_workers, position);
}

std::string AdmittedMessage(int64_t run_id, int attempt, int need, double waited_ms) {
    return Format("run %lld: %d parallel workers free after waiting %.1f ms, starting attempt %d",
                  static_cast<long long>(run_id), need, waited_ms, attempt);
}

std::string DeadlineMessage(int64_t run_id, int attempt, int max_attempts, double waited_ms,
                            int64_t max_wait_ms) {
    return Format("run %lld: waited %.1f ms for free workers, and max_wait (%lld ms) is reached: "
                  "attempt %d of %d is the last, judged against min_workers",
                  static_cast<long long>(run_id), waited_ms, static_cast<long long>(max_wait_ms), attempt,
                  max_attempts);
}

int64_t DefaultMaxWaitMs(const RunOptions &o) {
    int64_t attempts = o.max_attempts > 1 ? o.max_attempts - 1 : 0;
    if (attempts == 0) return kDefaultMaxWaitMs;
    /* Each abandoned attempt of the client loop costs its 1-second check plus retry_delay. */
    int64_t per_retry = (o.retry_delay_ms > 0 ? o.retry_delay_ms : 0) + kClientLoopCheckMs;
    /* Saturate before multiplying, so no input can overflow. */
    if (per_retry > kMaxRetryDelayMs / attempts) return kMaxRetryDelayMs;
    return std::max(kDefaultMaxWaitMs, std::min(attempts * per_retry, kMaxRetryDelayMs));
}

bool IsSqlstate(const std::string &text) {
    if (text.size() != 5) return false;
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return false;
    return true;
}

}  // namespace pgguarantee
