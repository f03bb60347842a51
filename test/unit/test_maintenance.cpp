/* Catch2 tests of how a maintenance command's launch is judged from its registered workers. */
#include <catch2/catch.hpp>

#include "core/maintenance.hpp"

using namespace pgguarantee;

TEST_CASE("WatchLaunch: the whole target registered is a launch at once", "[maintenance]") {
    CHECK(WatchLaunch(4, 4, false, 1, 0) == LaunchWatch::kLaunched);
    CHECK(WatchLaunch(4, 4, true, 1, 1) == LaunchWatch::kLaunched);
    CHECK(WatchLaunch(5, 4, false, 1, 0) == LaunchWatch::kLaunched);
}

TEST_CASE("WatchLaunch: fewer than the target with the pool full is short at once", "[maintenance]") {
    CHECK(WatchLaunch(2, 4, true, 1, 1) == LaunchWatch::kShort);
    CHECK(WatchLaunch(1, 4, true, 1, 1) == LaunchWatch::kShort);
}

TEST_CASE("WatchLaunch: fewer with room left waits, then settles", "[maintenance]") {
    /* The leader may be between two registrations. */
    CHECK(WatchLaunch(2, 4, false, 1, 0) == LaunchWatch::kWaiting);
    CHECK(WatchLaunch(2, 4, false, kSettleLooks - 1, 0) == LaunchWatch::kWaiting);
    /* The registrations stopped and a slot freed since: final. */
    CHECK(WatchLaunch(2, 4, false, kSettleLooks, 0) == LaunchWatch::kShort);
}

TEST_CASE("WatchLaunch: no worker yet", "[maintenance]") {
    /* Room in the pool: the launch is still to come. */
    CHECK(WatchLaunch(0, 4, false, 100, 0) == LaunchWatch::kWaiting);
    /* The pool full for a few looks: the launch got none, or will. */
    CHECK(WatchLaunch(0, 4, true, 1, 1) == LaunchWatch::kWaiting);
    CHECK(WatchLaunch(0, 4, true, kEmptyFullLooks, kEmptyFullLooks) == LaunchWatch::kShort);
}

TEST_CASE("JudgePass: a VACUUM pass is short only when it got fewer than it asked for", "[maintenance]") {
    CHECK(JudgePass(4, 4, 4) == LaunchWatch::kLaunched);
    CHECK(JudgePass(4, 5, 4) == LaunchWatch::kLaunched);
    CHECK(JudgePass(2, 4, 4) == LaunchWatch::kShort);
    CHECK(JudgePass(0, 4, 4) == LaunchWatch::kShort);
    /* A cleanup pass that asked for 2 and got them: not a shortfall. */
    CHECK(JudgePass(2, 2, 4) == LaunchWatch::kFewerPlanned);
    CHECK(JudgePass(1, 2, 4) == LaunchWatch::kShort);
}
