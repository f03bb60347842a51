/*
 * test_waiting.cpp: Catch2 unit tests of the core's waiting-for-slots helpers
 * (src/core/policy.hpp): the texts of the waiting, admitted and deadline messages, and
 * the default bound on waiting, DefaultMaxWaitMs.
 *
 * Built and run by test/unit/Makefile (`make -C test/unit run`), linked with
 * libCatch2WithMain.a, so no CATCH_CONFIG_MAIN here.  No SECTIONs: one TEST_CASE per
 * behaviour, so the JUnit report lists one <testcase> per behaviour.
 */
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "core/policy.hpp"

using namespace pgguarantee;

namespace {

constexpr int64_t kOneDayMs = 86400000;

RunOptions Attempts(int max_attempts, int64_t retry_delay_ms) {
    RunOptions o;
    o.max_attempts = max_attempts;
    o.retry_delay_ms = retry_delay_ms;
    return o;
}

}  // namespace

/* ---- WaitingMessage ---- */

TEST_CASE("WaitingMessage: exact text", "[waiting][message]") {
    CHECK(WaitingMessage(7, 1, 4, 2, 1) ==
          "run 7: attempt 1 waits for 4 free parallel workers (2 free now, position 1 in the "
          "queue)");
}

TEST_CASE("WaitingMessage: every number lands in its own place", "[waiting][message]") {
    CHECK(WaitingMessage(12, 3, 8, 5, 2) ==
          "run 12: attempt 3 waits for 8 free parallel workers (5 free now, position 2 in the "
          "queue)");
}

TEST_CASE("WaitingMessage: zero free workers", "[waiting][message]") {
    CHECK(WaitingMessage(1, 1, 1, 0, 1) ==
          "run 1: attempt 1 waits for 1 free parallel workers (0 free now, position 1 in the "
          "queue)");
}

TEST_CASE("WaitingMessage: run ids beyond 32 bits are printed in full", "[waiting][message]") {
    CHECK(WaitingMessage(INT64_C(9000000000), 100, 1024, 1023, 32) ==
          "run 9000000000: attempt 100 waits for 1024 free parallel workers (1023 free now, "
          "position 32 in the queue)");
}

TEST_CASE("WaitingMessage: the largest run id", "[waiting][message]") {
    CHECK(WaitingMessage(INT64_MAX, 1, 4, 0, 1) ==
          "run 9223372036854775807: attempt 1 waits for 4 free parallel workers (0 free now, "
          "position 1 in the queue)");
}

/* ---- AdmittedMessage ---- */

TEST_CASE("AdmittedMessage: exact text", "[waiting][message]") {
    CHECK(AdmittedMessage(7, 1, 4, 1234.5) ==
          "run 7: 4 parallel workers free after waiting 1234.5 ms, starting attempt 1");
}

TEST_CASE("AdmittedMessage: no wait at all reads 0.0 ms", "[waiting][message]") {
    CHECK(AdmittedMessage(3, 2, 8, 0.0) ==
          "run 3: 8 parallel workers free after waiting 0.0 ms, starting attempt 2");
}

TEST_CASE("AdmittedMessage: the wait is rounded to one decimal", "[waiting][message]") {
    CHECK(AdmittedMessage(1, 1, 2, 2.04) ==
          "run 1: 2 parallel workers free after waiting 2.0 ms, starting attempt 1");
    CHECK(AdmittedMessage(1, 1, 2, 2.06) ==
          "run 1: 2 parallel workers free after waiting 2.1 ms, starting attempt 1");
    CHECK(AdmittedMessage(1, 1, 2, 0.04) ==
          "run 1: 2 parallel workers free after waiting 0.0 ms, starting attempt 1");
}

TEST_CASE("AdmittedMessage: a wait of a whole day is printed without exponent",
          "[waiting][message]") {
    CHECK(AdmittedMessage(INT64_C(9000000000), 100, 1024, 86400000.0) ==
          "run 9000000000: 1024 parallel workers free after waiting 86400000.0 ms, starting "
          "attempt 100");
}

/* ---- DeadlineMessage ---- */

TEST_CASE("DeadlineMessage: exact text, naming max_wait and the caller's max_attempts", "[waiting][message]") {
    CHECK(DeadlineMessage(7, 3, 5, 8000.0, 8000) ==
          "run 7: waited 8000.0 ms for free workers, and max_wait (8000 ms) is reached: attempt 3 of 5 "
          "is the last, judged against min_workers");
}

TEST_CASE("DeadlineMessage: the wait is rounded to one decimal", "[waiting][message]") {
    CHECK(DeadlineMessage(2, 1, 5, 12.345, 12) ==
          "run 2: waited 12.3 ms for free workers, and max_wait (12 ms) is reached: attempt 1 of 5 is "
          "the last, judged against min_workers");
    CHECK(DeadlineMessage(2, 1, 1, 0.0, 0) ==
          "run 2: waited 0.0 ms for free workers, and max_wait (0 ms) is reached: attempt 1 of 1 is "
          "the last, judged against min_workers");
}

TEST_CASE("DeadlineMessage: run ids beyond 32 bits are printed in full", "[waiting][message]") {
    CHECK(DeadlineMessage(INT64_C(9000000000), 100, 100, 86400000.0, 86400000) ==
          "run 9000000000: waited 86400000.0 ms for free workers, and max_wait (86400000 ms) is "
          "reached: attempt 100 of 100 is the last, judged against min_workers");
}

/* ---- DefaultMaxWaitMs ---- */

TEST_CASE("DefaultMaxWaitMs: the defaults give 30 minutes, for nightly jobs", "[waiting][maxwait]") {
    RunOptions defaults;
    REQUIRE(defaults.max_attempts == 5);
    REQUIRE(defaults.retry_delay_ms == 2000);
    CHECK(DefaultMaxWaitMs(defaults) == 30 * 60 * 1000);
    CHECK(kDefaultMaxWaitMs == 1800000);
}

TEST_CASE("DefaultMaxWaitMs: never under 30 minutes while the client loop's horizon is shorter",
          "[waiting][maxwait]") {
    CHECK(DefaultMaxWaitMs(Attempts(2, 2000)) == kDefaultMaxWaitMs);
    CHECK(DefaultMaxWaitMs(Attempts(3, 50)) == kDefaultMaxWaitMs);
    CHECK(DefaultMaxWaitMs(Attempts(100, 1000)) == kDefaultMaxWaitMs);
    /* 99 * (17,181 + 1,000) = 1,799,919: still under 30 minutes. */
    CHECK(DefaultMaxWaitMs(Attempts(100, 17181)) == kDefaultMaxWaitMs);
}

TEST_CASE("DefaultMaxWaitMs: (max_attempts - 1) * (retry_delay + 1 s) when that is longer", "[waiting][maxwait]") {
    /* 99 * (17,182 + 1,000) = 1,800,018 */
    CHECK(DefaultMaxWaitMs(Attempts(100, 17182)) == 1800018);
    CHECK(DefaultMaxWaitMs(Attempts(5, 600000)) == 4 * 601000);
}

TEST_CASE("DefaultMaxWaitMs: max_attempts 1 waits the 30 minutes too (waiting spends no attempt)",
          "[waiting][maxwait]") {
    CHECK(DefaultMaxWaitMs(Attempts(1, 2000)) == kDefaultMaxWaitMs);
    CHECK(DefaultMaxWaitMs(Attempts(1, 0)) == kDefaultMaxWaitMs);
    CHECK(DefaultMaxWaitMs(Attempts(1, kOneDayMs)) == kDefaultMaxWaitMs);
}

TEST_CASE("DefaultMaxWaitMs: retry_delay 0 gives the 30 minutes", "[waiting][maxwait]") {
    CHECK(DefaultMaxWaitMs(Attempts(5, 0)) == kDefaultMaxWaitMs);
    CHECK(DefaultMaxWaitMs(Attempts(100, 0)) == kDefaultMaxWaitMs);
}

TEST_CASE("DefaultMaxWaitMs: one millisecond under a day is returned as computed, not clamped",
          "[waiting][maxwait]") {
    /* 1 * (86,398,999 + 1,000) = 86,399,999: a clamp to a day would give 86,400,000. */
    CHECK(DefaultMaxWaitMs(Attempts(2, kOneDayMs - 1001)) == kOneDayMs - 1);
    /* 4 * (21,598,999 + 1,000) = 86,399,996. */
    CHECK(DefaultMaxWaitMs(Attempts(5, 21598999)) == 86399996);
    /* 99 * (871,726 + 1,000) = 86,399,874. */
    CHECK(DefaultMaxWaitMs(Attempts(100, 871726)) == 86399874);
}

TEST_CASE("DefaultMaxWaitMs: exactly one day comes out as one day", "[waiting][maxwait]") {
    /* 1 * (86,399,000 + 1,000) and 4 * (21,599,000 + 1,000) are exactly a day; clamped or
     * not, the answer is the same, so this pins the arithmetic, not the clamp (the clamp
     * has the cases above and below). */
    CHECK(DefaultMaxWaitMs(Attempts(2, kOneDayMs - 1000)) == kOneDayMs);
    CHECK(DefaultMaxWaitMs(Attempts(5, kOneDayMs / 4 - 1000)) == kOneDayMs);
}

TEST_CASE("DefaultMaxWaitMs: one millisecond over a day is clamped to a day",
          "[waiting][maxwait]") {
    /* 3 * (28,799,001 + 1,000) = 86,400,003 */
    CHECK(DefaultMaxWaitMs(Attempts(4, kOneDayMs / 3 - 999)) == kOneDayMs);
    CHECK(DefaultMaxWaitMs(Attempts(3, kOneDayMs / 2)) == kOneDayMs);
    CHECK(DefaultMaxWaitMs(Attempts(3, kOneDayMs / 2 - 1001)) == kOneDayMs - 2);
}

TEST_CASE("DefaultMaxWaitMs: the largest arguments are clamped to a day", "[waiting][maxwait]") {
    CHECK(DefaultMaxWaitMs(Attempts(kMaxAttempts, kMaxRetryDelayMs)) == kOneDayMs);
    CHECK(DefaultMaxWaitMs(Attempts(3, kMaxRetryDelayMs)) == kOneDayMs);
    CHECK(kMaxRetryDelayMs == kOneDayMs);
}

TEST_CASE("DefaultMaxWaitMs: independent of the worker counts", "[waiting][maxwait]") {
    RunOptions a = Attempts(5, 300);
    RunOptions b = a;
    b.target_workers = 16;
    b.min_workers = 0;
    CHECK(DefaultMaxWaitMs(a) == kDefaultMaxWaitMs);
    CHECK(DefaultMaxWaitMs(b) == kDefaultMaxWaitMs);
    a.retry_delay_ms = b.retry_delay_ms = 3600000;
    CHECK(DefaultMaxWaitMs(a) == 14404000);
    CHECK(DefaultMaxWaitMs(b) == 14404000);
}

TEST_CASE("DefaultMaxWaitMs: a table of values worked out by hand", "[waiting][maxwait]") {
    /* Each row: max_attempts, retry_delay_ms, the bound (max_attempts - 1) x (retry_delay
     * + 1,000 ms), multiplied out by hand, or a day (86,400,000) when that is more, or
     * 30 minutes (1,800,000) when that is more. */
    struct Row {
        int attempts;
        int64_t delay_ms;
        int64_t expected_ms;
    };
    const Row rows[] = {
        {1, 0, 1800000},      /* one attempt: 30 minutes */
        {1, 3600000, 1800000},
        {1, 86400000, 1800000},
        {2, 0, 1800000},      /* under 30 minutes: 1 x 1,000 */
        {2, 1, 1800000},      /* under 30 minutes: 1 x 1,001 */
        {2, 60000, 1800000},  /* under 30 minutes: 1 x 61,000 */
        {2, 12342857, 12343857},          /* 1 x 12,343,857 */
        {2, 86400000, 86400000},          /* 1 x 86,401,000: over a day */
        {3, 1, 1800000},      /* under 30 minutes: 2 x 1,001 */
        {3, 60000, 1800000},  /* under 30 minutes: 2 x 61,000 */
        {3, 3600000, 7202000},            /* 2 x 3,601,000 */
        {3, 12342857, 24687714},          /* 2 x 12,343,857 */
        {5, 50, 1800000},     /* under 30 minutes: 4 x 1,050 */
        {5, 3600000, 14404000},           /* 4 x 3,601,000 */
        {5, 12342857, 49375428},          /* 4 x 12,343,857 */
        {10, 0, 1800000},     /* under 30 minutes: 9 x 1,000 */
        {10, 2000, 1800000},  /* under 30 minutes: 9 x 3,000 */
        {10, 60000, 1800000}, /* under 30 minutes: 9 x 61,000 */
        {10, 3600000, 32409000},          /* 9 x 3,601,000 */
        {10, 12342857, 86400000},         /* 9 x 12,343,857 = 111,094,713: over a day */
        {50, 1, 1800000},     /* under 30 minutes: 49 x 1,001 */
        {50, 50, 1800000},    /* under 30 minutes: 49 x 1,050 */
        {50, 60000, 2989000},             /* 49 x 61,000 */
        {50, 3600000, 86400000},          /* 49 x 3,601,000 = 176,449,000: over a day */
        {100, 1, 1800000},    /* under 30 minutes: 99 x 1,001 */
        {100, 2000, 1800000}, /* under 30 minutes: 99 x 3,000 */
        {100, 60000, 6039000},            /* 99 x 61,000 */
        {100, 3600000, 86400000},         /* 99 x 3,601,000: over a day */
        {100, 86400000, 86400000},
    };
    for (const Row &row : rows) {
        INFO("max_attempts " << row.attempts << ", retry_delay_ms " << row.delay_ms);
        CHECK(DefaultMaxWaitMs(Attempts(row.attempts, row.delay_ms)) == row.expected_ms);
    }
}
