/*
 * maintenance.hpp: watching the parallel launch of a maintenance command (an index build)
 * from the leader, without a Gather node (pure C++, no PostgreSQL header).
 *
 * A parallel index build launches its workers deep inside the access method, where no hook
 * runs.  The leader registers them one after another in the server's background-worker
 * slots, each marked with the leader's pid, and stops at the first registration the pool
 * refuses.  So, looked at often enough (a timer in the leader), the count of its registered
 * parallel workers tells what the launch got: the whole target as soon as it is there;
 * fewer once the pool can take no more (the next registration would fail, or did); fewer
 * for a while with the pool not full (the registrations ended and a slot freed since).
 */
#pragma once

namespace pgguarantee {

/* What one look at a launch in progress says. */
enum class LaunchWatch {
    kWaiting = 0,   /* nothing to say yet: the launch has not happened or is under way */
    kLaunched,      /* the target is registered */
    kShort,         /* the launch is over with fewer workers than the target */
    kFewerPlanned,  /* a VACUUM pass that asked for fewer workers than the target got them all */
};

/* Looks at which a count short of the target, with the pool not full, is taken as final. */
constexpr int kSettleLooks = 20;
/* Looks at which no worker at all, with the pool full, is taken as final. */
constexpr int kEmptyFullLooks = 3;

/*
 * One look: `registered` parallel workers of the leader hold a slot now, the pool can take
 * no more of them (`pool_full`), and the count has been the same for `same_looks` looks
 * (1 on the first look at a count), `full_looks` of them with the pool full.
 */
LaunchWatch WatchLaunch(int registered, int target, bool pool_full, int same_looks, int full_looks);

/*
 * A pass of a parallel VACUUM (its index vacuuming or cleanup), as PostgreSQL reports it
 * right after the launch: `planned` workers asked for (one per index it processes in
 * parallel, but the leader's, so a pass can ask for fewer than the target), `launched` got.
 * The target reached: launched; fewer than asked: short (the pool refused some); all it
 * asked for, below the target: kFewerPlanned, not a shortfall.
 */
LaunchWatch JudgePass(int launched, int planned, int target);

}  // namespace pgguarantee
