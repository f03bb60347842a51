/*
 * monitor.hpp: watching the statement's Gather nodes inside the worker that runs it.
 *
 * While an attempt is active, an ExecutorStart hook finds every Gather and Gather Merge,
 * checks the workers the planner gave each, and wraps the node and its child so that the
 * workers actually launched are read, published and judged the moment they start, before
 * the leader does real work.  A get_relation_info hook can force the planned degree.
 * The state is process-local: only the guarantee worker ever activates it.
 */
#pragma once

#include "core/policy.hpp"
#include "pg/shmem/run_segment.hpp"

namespace pgguarantee {

struct MonitorState {
    bool active;
    int64 run_id;
    int slot_index;
    int attempt;
    RunOptions options;     /* how launches are judged (max_attempts: the last one judged) */
    int shown_max_attempts; /* the caller's max_attempts, for the NOTICEs */
    bool force_workers;
    StatementKind kind;

    int executor_starts;    /* executors started during this attempt */
    int launches;           /* Gather launches observed */
    int min_planned;        /* fewest workers planned by any Gather, INT_MAX before any */
    int min_launched;       /* fewest workers launched by any launch, INT_MAX before any */
    bool degraded;          /* a launch was accepted below target on the last attempt */
    AttemptOutcome abandon; /* why the attempt was abandoned, kNone while it goes on */
    TimestampTz first_launch_at;  /* when the attempt's first Gather launched; 0 before */
};

extern MonitorState g_monitor;

void InstallMonitorHooks();
void MonitorBegin(int64 run_id, int slot_index, int attempt, const RunOptions &options,
                  int shown_max_attempts, bool force_workers, StatementKind kind);
/*
 * A launch of `planned` workers is about to happen (a Gather's, an index build's): when the
 * workers free now cannot make the target and attempts are left, the attempt is abandoned
 * before any worker starts (no worker to wait for, nothing compiled for it).  The free count
 * is read without a lock and can be stale either way: a launch that goes ahead is judged
 * again by what it launched.
 */
void JudgePoolBeforeLaunching(int planned);
/* Raises the abandonment again if the statement swallowed it; checks a launch happened. */
void MonitorCheckBeforeCommit();
void MonitorEnd();

}  // namespace pgguarantee
