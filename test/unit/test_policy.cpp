/*
 * test_policy.cpp: Catch2 unit tests of the pure C++ core (src/core/policy.hpp).
 *
 * Built and run by test/unit/Makefile (`make -C test/unit run`), linked with
 * libCatch2WithMain.a, so no CATCH_CONFIG_MAIN here.  No SECTIONs: one TEST_CASE per
 * behaviour, so the JUnit report lists one <testcase> per behaviour.
 */
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/policy.hpp"

using namespace pgguarantee;

namespace {

RunOptions Options(int target, int min, int attempts, int64_t delay_ms = 2000) {
    RunOptions o;
    o.target_workers = target;
    o.min_workers = min;
    o.max_attempts = attempts;
    o.retry_delay_ms = delay_ms;
    return o;
}

Capacity Cap(int max_parallel_workers, int max_worker_processes, int others) {
    Capacity c;
    c.max_parallel_workers = max_parallel_workers;
    c.max_worker_processes = max_worker_processes;
    c.other_background_workers = others;
    return c;
}

bool Contains(const std::string &haystack, const std::string &needle) {
    return haystack.find(needle) != std::string::npos;
}

AttemptRecord Record(int planned, int launched, AttemptOutcome outcome, int64_t duration_us,
                     int64_t waited_ms = 0) {
    AttemptRecord r;
    r.planned = planned;
    r.launched = launched;
    r.outcome = outcome;
    r.duration_us = duration_us;
    r.waited_ms = waited_ms;
    return r;
}

}  // namespace

/* ---------------------------------------------------------------- constants and defaults */

TEST_CASE("limits match the documented argument ranges", "[limits]") {
    CHECK(kMaxTargetWorkers == 1024);
    CHECK(kMaxAttempts == 100);
    CHECK(kMaxRetryDelayMs == 86400000LL);
}

TEST_CASE("default RunOptions and Capacity are valid and reachable", "[validate][reachable]") {
    RunOptions o;
    CHECK(o.target_workers == 4);
    CHECK(o.min_workers == 2);
    CHECK(o.max_attempts == 5);
    CHECK(o.retry_delay_ms == 2000);
    CHECK_FALSE(ValidateOptions(o).has_value());

    Capacity c;
    CHECK(c.max_parallel_workers == 8);
    CHECK(c.max_worker_processes == 8);
    CHECK(c.other_background_workers == 0);
    CHECK(ParallelCeiling(c) == 7);
    CHECK_FALSE(CheckReachable(o, c).has_value());
}

/* ---------------------------------------------------------------- ValidateOptions */

TEST_CASE("ValidateOptions: target_workers accepts 1 and 1024", "[validate][target]") {
    CHECK_FALSE(ValidateOptions(Options(1, 0, 1)).has_value());
    CHECK_FALSE(ValidateOptions(Options(1, 1, 1)).has_value());
    CHECK_FALSE(ValidateOptions(Options(1024, 0, 5)).has_value());
    CHECK_FALSE(ValidateOptions(Options(1024, 1024, 5)).has_value());
}

TEST_CASE("ValidateOptions: target_workers 0 is rejected", "[validate][target]") {
    std::optional<Problem> p = ValidateOptions(Options(0, 0, 5));
    REQUIRE(p.has_value());
    CHECK(p->argument == "target_workers");
    CHECK(p->message == "target_workers must be between 1 and 1024, not 0");
    CHECK(p->hint == "target_workers is the number of parallel workers the statement must get.");
    CHECK(p->detail.empty());
}

TEST_CASE("ValidateOptions: negative target_workers is rejected", "[validate][target]") {
    std::optional<Problem> p = ValidateOptions(Options(-3, 0, 5));
    REQUIRE(p.has_value());
    CHECK(p->argument == "target_workers");
    CHECK(p->message == "target_workers must be between 1 and 1024, not -3");
}

TEST_CASE("ValidateOptions: target_workers 1025 is rejected", "[validate][target]") {
    std::optional<Problem> p = ValidateOptions(Options(1025, 0, 5));
    REQUIRE(p.has_value());
    CHECK(p->argument == "target_workers");
    CHECK(p->message == "target_workers must be between 1 and 1024, not 1025");
}

TEST_CASE("ValidateOptions: target_workers is reported before other bad arguments",
          "[validate][order]") {
    /* Every argument is wrong: the target is named first. */
    std::optional<Problem> p = ValidateOptions(Options(0, -1, 0, -1));
    REQUIRE(p.has_value());
    CHECK(p->argument == "target_workers");
}

TEST_CASE("ValidateOptions: min_workers accepts 0 and target_workers", "[validate][min]") {
    CHECK_FALSE(ValidateOptions(Options(4, 0, 5)).has_value());
    CHECK_FALSE(ValidateOptions(Options(4, 4, 5)).has_value());
    CHECK_FALSE(ValidateOptions(Options(4, 3, 5)).has_value());
}

TEST_CASE("ValidateOptions: negative min_workers is rejected", "[validate][min]") {
    std::optional<Problem> p = ValidateOptions(Options(4, -1, 5));
    REQUIRE(p.has_value());
    CHECK(p->argument == "min_workers");
    CHECK(p->message == "min_workers must not be negative, not -1");
    CHECK(p->hint == "Use 0 to accept any number of workers on the last attempt.");
}

TEST_CASE("ValidateOptions: min_workers above target_workers is rejected", "[validate][min]") {
    std::optional<Problem> p = ValidateOptions(Options(4, 5, 5));
    REQUIRE(p.has_value());
    CHECK(p->argument == "min_workers");
    CHECK(p->message == "min_workers (5) must not exceed target_workers (4)");
    CHECK(p->hint == "min_workers is the fewest workers accepted on the last attempt.");
}

TEST_CASE("ValidateOptions: min_workers is reported before max_attempts and retry_delay",
          "[validate][order]") {
    std::optional<Problem> p = ValidateOptions(Options(4, 9, 0, -1));
    REQUIRE(p.has_value());
    CHECK(p->argument == "min_workers");
}

TEST_CASE("ValidateOptions: max_attempts accepts 1 and 100", "[validate][attempts]") {
    CHECK_FALSE(ValidateOptions(Options(4, 2, 1)).has_value());
    CHECK_FALSE(ValidateOptions(Options(4, 2, 100)).has_value());
}

TEST_CASE("ValidateOptions: max_attempts 0 is rejected", "[validate][attempts]") {
    std::optional<Problem> p = ValidateOptions(Options(4, 2, 0));
    REQUIRE(p.has_value());
    CHECK(p->argument == "max_attempts");
    CHECK(p->message == "max_attempts must be between 1 and 100, not 0");
    CHECK(p->hint == "An attempt is one start of the statement; 1 means no retry.");
}

TEST_CASE("ValidateOptions: max_attempts 101 is rejected", "[validate][attempts]") {
    std::optional<Problem> p = ValidateOptions(Options(4, 2, 101));
    REQUIRE(p.has_value());
    CHECK(p->argument == "max_attempts");
    CHECK(p->message == "max_attempts must be between 1 and 100, not 101");
}

TEST_CASE("ValidateOptions: max_attempts is reported before retry_delay", "[validate][order]") {
    std::optional<Problem> p = ValidateOptions(Options(4, 2, -7, -1));
    REQUIRE(p.has_value());
    CHECK(p->argument == "max_attempts");
    CHECK(p->message == "max_attempts must be between 1 and 100, not -7");
}

TEST_CASE("ValidateOptions: retry_delay accepts 0 and exactly one day", "[validate][delay]") {
    CHECK_FALSE(ValidateOptions(Options(4, 2, 5, 0)).has_value());
    CHECK_FALSE(ValidateOptions(Options(4, 2, 5, 86400000LL)).has_value());
}

TEST_CASE("ValidateOptions: negative retry_delay is rejected", "[validate][delay]") {
    std::optional<Problem> p = ValidateOptions(Options(4, 2, 5, -1));
    REQUIRE(p.has_value());
    CHECK(p->argument == "retry_delay");
    CHECK(p->message == "retry_delay must not be negative");
    CHECK(p->hint == "Use '0' to retry at once.");
}

TEST_CASE("ValidateOptions: retry_delay one millisecond over a day is rejected",
          "[validate][delay]") {
    std::optional<Problem> p = ValidateOptions(Options(4, 2, 5, 86400001LL));
    REQUIRE(p.has_value());
    CHECK(p->argument == "retry_delay");
    CHECK(p->message == "retry_delay must not exceed 1 day");
    CHECK(p->hint == "A retry delay is the pause between two attempts.");
}

TEST_CASE("ValidateOptions: huge retry_delay beyond 32 bits is rejected", "[validate][delay]") {
    std::optional<Problem> p = ValidateOptions(Options(4, 2, 5, INT64_C(1) << 40));
    REQUIRE(p.has_value());
    CHECK(p->argument == "retry_delay");
}

/* ---------------------------------------------------------------- ParallelCeiling */

TEST_CASE("ParallelCeiling: the smaller of max_parallel_workers and free process slots",
          "[ceiling]") {
    /* Limited by max_parallel_workers. */
    CHECK(ParallelCeiling(Cap(4, 16, 0)) == 4);
    /* Limited by processes: 8 slots, 2 others, 1 for the statement's worker. */
    CHECK(ParallelCeiling(Cap(8, 8, 2)) == 5);
    CHECK(ParallelCeiling(Cap(8, 8, 0)) == 7);
    /* Both limits equal. */
    CHECK(ParallelCeiling(Cap(5, 8, 2)) == 5);
}

TEST_CASE("ParallelCeiling: never negative", "[ceiling]") {
    CHECK(ParallelCeiling(Cap(8, 1, 0)) == 0);
    CHECK(ParallelCeiling(Cap(8, 3, 5)) == 0);
    CHECK(ParallelCeiling(Cap(0, 8, 0)) == 0);
}

/* ---------------------------------------------------------------- CheckReachable */

TEST_CASE("CheckReachable: target at exactly the ceiling is reachable", "[reachable]") {
    CHECK_FALSE(CheckReachable(Options(8, 0, 1), Cap(8, 9, 0)).has_value());
    CHECK_FALSE(CheckReachable(Options(5, 0, 1), Cap(8, 8, 2)).has_value());
    CHECK_FALSE(CheckReachable(Options(1, 0, 1), Cap(1, 2, 0)).has_value());
}

TEST_CASE("CheckReachable: target above max_parallel_workers names the setting and value",
          "[reachable]") {
    std::optional<Problem> p = CheckReachable(Options(9, 0, 3), Cap(8, 64, 0));
    REQUIRE(p.has_value());
    CHECK(p->argument == "target_workers");
    CHECK(p->message == "target_workers 9 can never be reached: max_parallel_workers is 8");
    CHECK(p->hint ==
          "Raise max_parallel_workers to at least 9 in postgresql.conf (a reload is enough), "
          "or lower target_workers.");
    CHECK(p->detail.empty());
}

TEST_CASE("CheckReachable: max_parallel_workers is reported before max_worker_processes",
          "[reachable]") {
    /* Both limits are too low: the reload-only fix is named first. */
    std::optional<Problem> p = CheckReachable(Options(10, 0, 3), Cap(4, 4, 1));
    REQUIRE(p.has_value());
    CHECK(Contains(p->message, "max_parallel_workers is 4"));
    CHECK_FALSE(Contains(p->message, "max_worker_processes"));
}

TEST_CASE("CheckReachable: too few worker processes, with one other background worker",
          "[reachable]") {
    /* 8 processes - 1 other - 1 for the statement's worker = 6 < 7. */
    std::optional<Problem> p = CheckReachable(Options(7, 0, 3), Cap(8, 8, 1));
    REQUIRE(p.has_value());
    CHECK(p->argument == "target_workers");
    CHECK(p->message ==
          "target_workers 7 can never be reached: max_worker_processes (8) leaves room for at "
          "most 6 parallel workers");
    CHECK(p->hint ==
          "Raise max_worker_processes to at least 9 (this needs a server restart), or lower "
          "target_workers.");
    CHECK(p->detail ==
          "1 background worker slot is held by other background workers (such as the logical "
          "replication launcher or pg_cron), and one is needed for the worker that runs the "
          "statement.");
}

TEST_CASE("CheckReachable: too few worker processes, with several other background workers",
          "[reachable]") {
    /* 8 - 3 - 1 = 4 < 6; needs 6 + 3 + 1 = 10. */
    std::optional<Problem> p = CheckReachable(Options(6, 2, 3), Cap(8, 8, 3));
    REQUIRE(p.has_value());
    CHECK(p->message ==
          "target_workers 6 can never be reached: max_worker_processes (8) leaves room for at "
          "most 4 parallel workers");
    CHECK(p->hint ==
          "Raise max_worker_processes to at least 10 (this needs a server restart), or lower "
          "target_workers.");
    CHECK(p->detail ==
          "3 background worker slots are held by other background workers (such as the logical "
          "replication launcher or pg_cron), and one is needed for the worker that runs the "
          "statement.");
}

TEST_CASE("CheckReachable: target equal to max_worker_processes is unreachable (one slot for "
          "the runner)",
          "[reachable]") {
    std::optional<Problem> p = CheckReachable(Options(8, 0, 3), Cap(8, 8, 0));
    REQUIRE(p.has_value());
    CHECK(p->message ==
          "target_workers 8 can never be reached: max_worker_processes (8) leaves room for at "
          "most 7 parallel workers");
    CHECK(p->hint ==
          "Raise max_worker_processes to at least 9 (this needs a server restart), or lower "
          "target_workers.");
    CHECK(p->detail ==
          "0 background worker slots are held by other background workers (such as the logical "
          "replication launcher or pg_cron), and one is needed for the worker that runs the "
          "statement.");
}

TEST_CASE("CheckReachable: room never reported as negative", "[reachable]") {
    /* 2 - 4 - 1 = -3 slots: the message says "at most 0". */
    std::optional<Problem> p = CheckReachable(Options(1, 0, 1), Cap(8, 2, 4));
    REQUIRE(p.has_value());
    CHECK(p->message ==
          "target_workers 1 can never be reached: max_worker_processes (2) leaves room for at "
          "most 0 parallel workers");
    CHECK(p->hint ==
          "Raise max_worker_processes to at least 6 (this needs a server restart), or lower "
          "target_workers.");
}

TEST_CASE("CheckReachable and ParallelCeiling: a table of capacities worked out by hand",
          "[reachable][ceiling]") {
    /* Each row: max_parallel_workers, max_worker_processes, other background workers, the
     * target; the ceiling min(max_parallel_workers, processes - others - 1), at least 0,
     * and whether the target is reachable, worked out by hand. */
    struct Row {
        int mpw, mwp, others, target;
        int ceiling;
        bool reachable;
    };
    const Row rows[] = {
        {8, 16, 0, 8, 8, true},      /* 16 - 0 - 1 = 15; min(8, 15) = 8 */
        {8, 16, 0, 9, 8, false},     /* above max_parallel_workers */
        {8, 9, 0, 8, 8, true},       /* 9 - 0 - 1 = 8 */
        {8, 9, 1, 8, 7, false},      /* 9 - 1 - 1 = 7 */
        {8, 9, 1, 7, 7, true},
        {4, 12, 4, 4, 4, true},      /* 12 - 4 - 1 = 7; min(4, 7) = 4 */
        {4, 12, 4, 5, 4, false},
        {10, 6, 2, 3, 3, true},      /* 6 - 2 - 1 = 3 */
        {10, 6, 2, 4, 3, false},
        {12, 12, 4, 7, 7, true},     /* 12 - 4 - 1 = 7 */
        {12, 12, 4, 8, 7, false},
        {0, 8, 0, 1, 0, false},      /* no parallel worker at all */
        {8, 1, 0, 1, 0, false},      /* 1 - 0 - 1 = 0 */
        {8, 2, 0, 1, 1, true},       /* 2 - 0 - 1 = 1 */
        {1, 2, 0, 1, 1, true},
        {8, 3, 5, 1, 0, false},      /* 3 - 5 - 1 = -3, shown as 0 */
    };
    for (const Row &row : rows) {
        INFO("mpw=" << row.mpw << " mwp=" << row.mwp << " others=" << row.others
                    << " target=" << row.target);
        Capacity c = Cap(row.mpw, row.mwp, row.others);
        CHECK(ParallelCeiling(c) == row.ceiling);
        CHECK(CheckReachable(Options(row.target, 0, 1), c).has_value() == !row.reachable);
    }
}

TEST_CASE("CheckReachable: the suggested max_worker_processes would make it reachable",
          "[reachable]") {
    /* Each row: the target, other background workers, the max_worker_processes the hint
     * suggests (target + others + 1, worked out by hand), and the room one slot short of it. */
    struct Row {
        int target, others;
        int suggested;
        const char *hint_part;
        const char *message_part;
    };
    const Row rows[] = {
        {1, 0, 2, "at least 2 ", "at most 0 parallel"},
        {4, 0, 5, "at least 5 ", "at most 3 parallel"},
        {4, 2, 7, "at least 7 ", "at most 3 parallel"},
        {7, 1, 9, "at least 9 ", "at most 6 parallel"},
        {16, 3, 20, "at least 20 ", "at most 15 parallel"},
        {20, 5, 26, "at least 26 ", "at most 19 parallel"},
    };
    for (const Row &row : rows) {
        INFO("target=" << row.target << " others=" << row.others);
        /* One process slot short of the suggestion: unreachable, and it says so. */
        std::optional<Problem> p =
            CheckReachable(Options(row.target, 0, 1), Cap(1024, row.suggested - 1, row.others));
        REQUIRE(p.has_value());
        CHECK(Contains(p->hint, row.hint_part));
        CHECK(Contains(p->message, row.message_part));
        /* Following the hint is enough. */
        CHECK_FALSE(CheckReachable(Options(row.target, 0, 1), Cap(1024, row.suggested, row.others))
                        .has_value());
    }
}

/* ---------------------------------------------------------------- JudgeLaunch */

TEST_CASE("JudgeLaunch: all target workers launched meets the target on any attempt",
          "[judge]") {
    RunOptions o = Options(4, 2, 3);
    CHECK(JudgeLaunch(o, 1, 4) == LaunchVerdict::kTargetMet);
    CHECK(JudgeLaunch(o, 2, 4) == LaunchVerdict::kTargetMet);
    CHECK(JudgeLaunch(o, 3, 4) == LaunchVerdict::kTargetMet);
    /* More than the target (should not happen, but is not a shortfall). */
    CHECK(JudgeLaunch(o, 1, 5) == LaunchVerdict::kTargetMet);
}

TEST_CASE("JudgeLaunch: short with attempts left abandons and retries", "[judge]") {
    RunOptions o = Options(4, 2, 3);
    CHECK(JudgeLaunch(o, 1, 3) == LaunchVerdict::kAbandonAndRetry);
    CHECK(JudgeLaunch(o, 1, 2) == LaunchVerdict::kAbandonAndRetry);
    CHECK(JudgeLaunch(o, 1, 0) == LaunchVerdict::kAbandonAndRetry);
    /* Even when at or above the minimum: the minimum only counts on the last attempt. */
    CHECK(JudgeLaunch(o, 2, 3) == LaunchVerdict::kAbandonAndRetry);
    CHECK(JudgeLaunch(o, 2, 0) == LaunchVerdict::kAbandonAndRetry);
}

TEST_CASE("JudgeLaunch: last attempt at or above the minimum continues degraded", "[judge]") {
    RunOptions o = Options(4, 2, 3);
    CHECK(JudgeLaunch(o, 3, 3) == LaunchVerdict::kAcceptDegraded);
    CHECK(JudgeLaunch(o, 3, 2) == LaunchVerdict::kAcceptDegraded);
}

TEST_CASE("JudgeLaunch: last attempt below the minimum abandons and fails", "[judge]") {
    RunOptions o = Options(4, 2, 3);
    CHECK(JudgeLaunch(o, 3, 1) == LaunchVerdict::kAbandonAndFail);
    CHECK(JudgeLaunch(o, 3, 0) == LaunchVerdict::kAbandonAndFail);
}

TEST_CASE("JudgeLaunch: max_attempts 1 never retries", "[judge]") {
    RunOptions o = Options(4, 2, 1);
    CHECK(JudgeLaunch(o, 1, 4) == LaunchVerdict::kTargetMet);
    CHECK(JudgeLaunch(o, 1, 3) == LaunchVerdict::kAcceptDegraded);
    CHECK(JudgeLaunch(o, 1, 2) == LaunchVerdict::kAcceptDegraded);
    CHECK(JudgeLaunch(o, 1, 1) == LaunchVerdict::kAbandonAndFail);
    CHECK(JudgeLaunch(o, 1, 0) == LaunchVerdict::kAbandonAndFail);
}

TEST_CASE("JudgeLaunch: min_workers 0 accepts zero workers on the last attempt only",
          "[judge]") {
    RunOptions o = Options(4, 0, 2);
    CHECK(JudgeLaunch(o, 1, 0) == LaunchVerdict::kAbandonAndRetry);
    CHECK(JudgeLaunch(o, 2, 0) == LaunchVerdict::kAcceptDegraded);
    CHECK(JudgeLaunch(o, 2, 3) == LaunchVerdict::kAcceptDegraded);
    CHECK(JudgeLaunch(o, 2, 4) == LaunchVerdict::kTargetMet);
}

TEST_CASE("JudgeLaunch: min_workers equal to target fails on any shortfall at the end",
          "[judge]") {
    RunOptions o = Options(4, 4, 2);
    CHECK(JudgeLaunch(o, 1, 3) == LaunchVerdict::kAbandonAndRetry);
    CHECK(JudgeLaunch(o, 2, 3) == LaunchVerdict::kAbandonAndFail);
    CHECK(JudgeLaunch(o, 2, 4) == LaunchVerdict::kTargetMet);
}

TEST_CASE("JudgeLaunch: max_attempts 1 with min_workers 0 never fails", "[judge]") {
    RunOptions o = Options(3, 0, 1);
    CHECK(JudgeLaunch(o, 1, 0) == LaunchVerdict::kAcceptDegraded);
    CHECK(JudgeLaunch(o, 1, 2) == LaunchVerdict::kAcceptDegraded);
    CHECK(JudgeLaunch(o, 1, 3) == LaunchVerdict::kTargetMet);
}

TEST_CASE("JudgeLaunch: a decision table worked out by hand", "[judge]") {
    constexpr LaunchVerdict kMet = LaunchVerdict::kTargetMet;
    constexpr LaunchVerdict kRetry = LaunchVerdict::kAbandonAndRetry;
    constexpr LaunchVerdict kDegraded = LaunchVerdict::kAcceptDegraded;
    constexpr LaunchVerdict kFail = LaunchVerdict::kAbandonAndFail;
    /* Each row: target, min_workers, max_attempts, the attempt, workers launched, and the
     * verdict the README's rules give. */
    struct Row {
        int target, min, attempts, attempt, launched;
        LaunchVerdict expected;
    };
    const Row rows[] = {
        {1, 0, 1, 1, 0, kDegraded},  /* last attempt, 0 >= min 0 */
        {1, 0, 1, 1, 1, kMet},
        {1, 1, 1, 1, 0, kFail},      /* last attempt, 0 < min 1 */
        {1, 1, 2, 1, 0, kRetry},
        {1, 1, 2, 2, 0, kFail},
        {1, 0, 2, 2, 0, kDegraded},
        {4, 2, 3, 1, 0, kRetry},     /* short with attempts left: retry, whatever the min */
        {4, 2, 3, 1, 1, kRetry},
        {4, 2, 3, 1, 2, kRetry},
        {4, 2, 3, 1, 3, kRetry},
        {4, 2, 3, 1, 4, kMet},
        {4, 2, 3, 1, 5, kMet},
        {4, 2, 3, 2, 3, kRetry},
        {4, 2, 3, 2, 4, kMet},
        {4, 2, 3, 3, 0, kFail},      /* the last attempt: judged against the minimum */
        {4, 2, 3, 3, 1, kFail},
        {4, 2, 3, 3, 2, kDegraded},
        {4, 2, 3, 3, 3, kDegraded},
        {4, 2, 3, 3, 4, kMet},
        {4, 2, 3, 3, 5, kMet},
        {6, 6, 1, 1, 0, kFail},
        {6, 6, 1, 1, 5, kFail},
        {6, 6, 1, 1, 6, kMet},
        {6, 0, 4, 3, 5, kRetry},
        {6, 0, 4, 4, 0, kDegraded},
        {6, 0, 4, 4, 5, kDegraded},
        {6, 0, 4, 4, 7, kMet},
        {3, 1, 2, 2, 0, kFail},
        {3, 1, 2, 2, 1, kDegraded},
        {3, 1, 2, 2, 3, kMet},
    };
    for (const Row &row : rows) {
        INFO("target=" << row.target << " min=" << row.min << " attempts=" << row.attempts
                       << " attempt=" << row.attempt << " launched=" << row.launched);
        CHECK(JudgeLaunch(Options(row.target, row.min, row.attempts), row.attempt, row.launched) ==
              row.expected);
    }
}

/* ---------------------------------------------------------------- names */

TEST_CASE("OutcomeName: every outcome has its own name", "[names]") {
    CHECK(std::string(OutcomeName(AttemptOutcome::kNone)) == "unfinished");
    CHECK(std::string(OutcomeName(AttemptOutcome::kTargetMet)) == "target met");
    CHECK(std::string(OutcomeName(AttemptOutcome::kDegraded)) == "degraded");
    CHECK(std::string(OutcomeName(AttemptOutcome::kAbandoned)) == "abandoned");
    CHECK(std::string(OutcomeName(AttemptOutcome::kFailedShort)) == "below minimum");
    CHECK(std::string(OutcomeName(AttemptOutcome::kStatementError)) == "statement error");
    CHECK(std::string(OutcomeName(AttemptOutcome::kCancelled)) == "cancelled");
    CHECK(std::string(OutcomeName(AttemptOutcome::kPlannedFewer)) ==
          "planned fewer than target");
    CHECK(std::string(OutcomeName(AttemptOutcome::kNoParallelPlan)) == "no parallel plan");
    CHECK(std::string(OutcomeName(AttemptOutcome::kTerminated)) == "worker terminated");
}

TEST_CASE("OutcomeName: an out-of-range value read from shared memory is \"unknown\"",
          "[names]") {
    CHECK(std::string(OutcomeName(static_cast<AttemptOutcome>(99))) == "unknown");
    CHECK(std::string(OutcomeName(static_cast<AttemptOutcome>(-1))) == "unknown");
}

TEST_CASE("StatusName: the result-row status strings", "[names]") {
    CHECK(std::string(StatusName(RunStatus::kRunning)) == "running");
    CHECK(std::string(StatusName(RunStatus::kTargetMet)) == "target_met");
    CHECK(std::string(StatusName(RunStatus::kDegraded)) == "degraded");
    CHECK(std::string(StatusName(RunStatus::kFailed)) == "failed");
    CHECK(std::string(StatusName(static_cast<RunStatus>(42))) == "unknown");
}

TEST_CASE("enum values stored in shared memory keep their numbers", "[names]") {
    CHECK(static_cast<int32_t>(AttemptOutcome::kNone) == 0);
    CHECK(static_cast<int32_t>(AttemptOutcome::kNoParallelPlan) == 8);
    CHECK(static_cast<int32_t>(RunStatus::kRunning) == 0);
    CHECK(static_cast<int32_t>(RunStatus::kFailed) == 3);
    AttemptRecord r;
    CHECK(r.planned == -1);
    CHECK(r.launched == -1);
    CHECK(r.outcome == AttemptOutcome::kNone);
    CHECK(r.waited_ms == 0);
    CHECK(r.duration_us == 0);
}

/* ---------------------------------------------------------------- DescribeAttempts */

TEST_CASE("DescribeAttempts: no attempts gives an empty string", "[describe]") {
    CHECK(DescribeAttempts(nullptr, 0, 4) == "");
    AttemptRecord r = Record(4, 4, AttemptOutcome::kTargetMet, 1000);
    CHECK(DescribeAttempts(&r, 0, 4) == "");
}

TEST_CASE("DescribeAttempts: one attempt that met the target", "[describe]") {
    AttemptRecord r = Record(4, 4, AttemptOutcome::kTargetMet, 12345);
    CHECK(DescribeAttempts(&r, 1, 4) ==
          "attempt 1: 4 of 4 workers launched (4 planned), target met after 12.3 ms.");
}

TEST_CASE("DescribeAttempts: several attempts are numbered and separated by semicolons",
          "[describe]") {
    std::vector<AttemptRecord> records = {
        Record(4, 1, AttemptOutcome::kAbandoned, 3100, 0),
        Record(4, 2, AttemptOutcome::kAbandoned, 2000, 500),
        Record(4, 0, AttemptOutcome::kFailedShort, 240, 500),
    };
    CHECK(DescribeAttempts(records.data(), 3, 4) ==
          "attempt 1: 1 of 4 workers launched (4 planned), abandoned after 3.1 ms; "
          "attempt 2: 2 of 4 workers launched (4 planned), abandoned after 2.0 ms; "
          "attempt 3: 0 of 4 workers launched (4 planned), below minimum after 0.2 ms.");
}

TEST_CASE("DescribeAttempts: count limits how many records are read", "[describe]") {
    std::vector<AttemptRecord> records = {
        Record(4, 1, AttemptOutcome::kAbandoned, 1000),
        Record(4, 3, AttemptOutcome::kDegraded, 4000),
    };
    CHECK(DescribeAttempts(records.data(), 1, 4) ==
          "attempt 1: 1 of 4 workers launched (4 planned), abandoned after 1.0 ms.");
    CHECK(DescribeAttempts(records.data(), 2, 4) ==
          "attempt 1: 1 of 4 workers launched (4 planned), abandoned after 1.0 ms; "
          "attempt 2: 3 of 4 workers launched (4 planned), degraded after 4.0 ms.");
}

TEST_CASE("DescribeAttempts: planned but not launched, and no Gather at all", "[describe]") {
    std::vector<AttemptRecord> records = {
        Record(2, -1, AttemptOutcome::kPlannedFewer, 500),
        Record(-1, -1, AttemptOutcome::kNoParallelPlan, 0),
        Record(-1, -1, AttemptOutcome::kStatementError, 7000000),
    };
    CHECK(DescribeAttempts(records.data(), 3, 8) ==
          "attempt 1: 2 workers planned, planned fewer than target after 0.5 ms; "
          "attempt 2: no parallel plan after 0.0 ms; "
          "attempt 3: statement error after 7000.0 ms.");
}

TEST_CASE("DescribeAttempts: the target passed in is shown, not the planned count",
          "[describe]") {
    AttemptRecord r = Record(6, 5, AttemptOutcome::kDegraded, 1500);
    CHECK(DescribeAttempts(&r, 1, 8) ==
          "attempt 1: 5 of 8 workers launched (6 planned), degraded after 1.5 ms.");
}

TEST_CASE("DescribeAttempts: a cancelled, unfinished attempt", "[describe]") {
    AttemptRecord r = Record(4, 4, AttemptOutcome::kCancelled, 99);
    AttemptRecord u = Record(-1, -1, AttemptOutcome::kNone, 0);
    CHECK(DescribeAttempts(&r, 1, 4) ==
          "attempt 1: 4 of 4 workers launched (4 planned), cancelled after 0.1 ms.");
    CHECK(DescribeAttempts(&u, 1, 4) == "attempt 1: unfinished after 0.0 ms.");
}

TEST_CASE("DescribeAttempts: all 100 attempts are listed in full", "[describe]") {
    std::vector<AttemptRecord> records(kMaxAttempts,
                                       Record(1024, 1023, AttemptOutcome::kAbandoned, 1000000));
    records.back().outcome = AttemptOutcome::kFailedShort;
    std::string text = DescribeAttempts(records.data(), kMaxAttempts, kMaxTargetWorkers);
    CHECK(Contains(text, "attempt 1: 1023 of 1024 workers launched (1024 planned), abandoned "
                         "after 1000.0 ms; "));
    CHECK(Contains(text, "; attempt 100: 1023 of 1024 workers launched (1024 planned), below "
                         "minimum after 1000.0 ms."));
    CHECK(text.back() == '.');
    /* One "attempt N:" per record. */
    size_t n = 0;
    for (size_t pos = text.find("attempt "); pos != std::string::npos;
         pos = text.find("attempt ", pos + 1))
        n++;
    CHECK(n == 100);
}

/* ---------------------------------------------------------------- log messages */

TEST_CASE("AttemptStartedMessage: run id, attempt of max, target and minimum", "[messages]") {
    CHECK(AttemptStartedMessage(42, 2, Options(4, 2, 5)) ==
          "run 42: attempt 2/5 started, target 4, minimum 2");
    CHECK(AttemptStartedMessage(1, 1, Options(16, 0, 1)) ==
          "run 1: attempt 1/1 started, target 16, minimum 0");
}

TEST_CASE("AttemptStartedMessage: 64-bit run ids are printed in full", "[messages]") {
    int64_t big = INT64_C(9007199254740993);  /* above 2^53 and 2^32 */
    CHECK(AttemptStartedMessage(big, 3, Options(8, 4, 10)) ==
          "run 9007199254740993: attempt 3/10 started, target 8, minimum 4");
    CHECK(AttemptStartedMessage(INT64_MAX, 1, Options(1, 1, 1)) ==
          "run 9223372036854775807: attempt 1/1 started, target 1, minimum 1");
}

TEST_CASE("LaunchMessage: target reached", "[messages]") {
    CHECK(LaunchMessage(7, 1, Options(4, 2, 3), 4, 4, LaunchVerdict::kTargetMet) ==
          "run 7: attempt 1/3 launched 4 of 4 planned workers (target 4), target reached");
}

TEST_CASE("LaunchMessage: abandoned, will retry", "[messages]") {
    CHECK(LaunchMessage(7, 2, Options(4, 2, 3), 4, 1, LaunchVerdict::kAbandonAndRetry) ==
          "run 7: attempt 2/3 launched 1 of 4 planned workers (target 4), short of target: "
          "abandoned, will retry");
}

TEST_CASE("LaunchMessage: degraded on the last attempt", "[messages]") {
    CHECK(LaunchMessage(7, 3, Options(4, 2, 3), 4, 3, LaunchVerdict::kAcceptDegraded) ==
          "run 7: attempt 3/3 launched 3 of 4 planned workers (target 4), last attempt, minimum "
          "met: continuing degraded");
}

TEST_CASE("LaunchMessage: below minimum on the last attempt", "[messages]") {
    CHECK(LaunchMessage(7, 3, Options(4, 2, 3), 4, 0, LaunchVerdict::kAbandonAndFail) ==
          "run 7: attempt 3/3 launched 0 of 4 planned workers (target 4), below minimum on the "
          "last attempt: abandoned");
}

TEST_CASE("LaunchMessage: planned differs from target and run id is 64-bit", "[messages]") {
    std::string m = LaunchMessage(INT64_C(5000000000), 1, Options(8, 2, 4), 6, 6,
                                  LaunchVerdict::kAbandonAndRetry);
    CHECK(m ==
          "run 5000000000: attempt 1/4 launched 6 of 6 planned workers (target 8), short of "
          "target: abandoned, will retry");
}

TEST_CASE("LaunchMessage agrees with JudgeLaunch's verdict for a whole run", "[messages][judge]") {
    RunOptions o = Options(4, 2, 2);
    LaunchVerdict v1 = JudgeLaunch(o, 1, 1);
    LaunchVerdict v2 = JudgeLaunch(o, 2, 2);
    CHECK(Contains(LaunchMessage(11, 1, o, 4, 1, v1), "will retry"));
    CHECK(Contains(LaunchMessage(11, 2, o, 4, 2, v2), "continuing degraded"));
}

TEST_CASE("IsSqlstate: five characters, digits and capital letters", "[retry]") {
    CHECK(IsSqlstate("40001"));
    CHECK(IsSqlstate("40P01"));
    CHECK(IsSqlstate("55P03"));
    CHECK(IsSqlstate("XX000"));
    CHECK_FALSE(IsSqlstate(""));
    CHECK_FALSE(IsSqlstate("4000"));
    CHECK_FALSE(IsSqlstate("400011"));
    CHECK_FALSE(IsSqlstate("40p01"));
    CHECK_FALSE(IsSqlstate("40-01"));
    CHECK_FALSE(IsSqlstate(std::string("400\0" "1", 5)));
}

TEST_CASE("OutcomeName: a retried statement error says so", "[retry]") {
    CHECK(std::string(OutcomeName(AttemptOutcome::kErrorRetried)) == "statement error, retried");
    CHECK(std::string(OutcomeName(AttemptOutcome::kStatementError)) == "statement error");
}
