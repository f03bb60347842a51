/* maintenance.cpp: see maintenance.hpp.  Called from a signal handler: no allocation. */
#include "core/maintenance.hpp"

namespace pgguarantee {

LaunchWatch WatchLaunch(int registered, int target, bool pool_full, int same_looks, int full_looks) {
    if (registered >= target) return LaunchWatch::kLaunched;
    if (registered > 0) {
        /* The leader's next registration fails (or did): it keeps what it has. */
        if (pool_full) return LaunchWatch::kShort;
        /* Registering takes microseconds: a count that stays put this long is final. */
        return same_looks >= kSettleLooks ? LaunchWatch::kShort : LaunchWatch::kWaiting;
    }
    /* None yet: either the launch is still to come, or it found the pool full and got none. */
    return pool_full && full_looks >= kEmptyFullLooks ? LaunchWatch::kShort : LaunchWatch::kWaiting;
}

LaunchWatch JudgePass(int launched, int planned, int target) {
    if (launched >= target) return LaunchWatch::kLaunched;
    if (launched < planned) return LaunchWatch::kShort;
    return LaunchWatch::kFewerPlanned;
}

}  // namespace pgguarantee
