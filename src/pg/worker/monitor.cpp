/*
 * monitor.cpp: see monitor.hpp.
 *
 * How a launch is caught early: ExecGather/ExecGatherMerge launch their workers on their
 * first call and, when the leader participates, call the child plan right afterwards,
 * before reading any worker's tuple.  We wrap the child's ExecProcNodeReal for that one
 * call and judge nworkers_launched there.  With parallel_leader_participation = off the
 * leader would never call the child, so for the launch we switch participation on and
 * let the wrapped child return "no tuples" at once: the leader reads the launch count and
 * then scans nothing itself, exactly as with participation off.  A wrapper on the Gather
 * itself is the fallback (single-copy Gathers) and re-arms the child on a rescan.
 *
 * "Workers launched" for a statement is the fewest launched by any Gather launch during
 * the attempt (every launch must meet the target); "workers planned" is the fewest any
 * Gather planned.
 */
#include "pg/worker/monitor.hpp"

#include "pg/errors.hpp"
#include "pg/settings.hpp"
#include "pg/shmem/downgrades.hpp"
#include "pg/shmem/pool.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/worker/maintenance.hpp"
#include "pg/worker/vacuum.hpp"

#include <climits>

namespace pgguarantee {

MonitorState g_monitor;

namespace {

constexpr int kMaxWrapped = 256;

struct Wrapped {
    PlanState *gather;
    PlanState *child;
    ExecProcNodeMtd gather_real;
    ExecProcNodeMtd child_real;
    bool judged;          /* this launch has been judged */
    bool forced_leader;   /* we switched leader participation on for this launch */
};

Wrapped g_wrapped[kMaxWrapped];
int g_nwrapped = 0;
bool g_saved_participation = true;
bool g_participation_forced = false;

ExecutorStart_hook_type prev_ExecutorStart = nullptr;
ExecutorEnd_hook_type prev_ExecutorEnd = nullptr;

/* max_parallel_workers before an ordinary session lowered it for a reservation; -1: not. */
int g_lowered_from = -1;

/*
 * parallel_guarantee.reserve_slots: an ordinary session about to run a parallel plan while
 * a guaranteed run waits first in the queue (or is admitted and about to launch) lowers its
 * own max_parallel_workers by what that run needs, so its Gathers launch fewer workers and
 * leave the run's free.  RegisterDynamicBackgroundWorker compares the registering session's
 * value, so nobody else is affected.  Restored when the executor ends or the transaction does.
 */
void LowerForReservation(QueryDesc *query_desc) {
    if (!g_reserve_slots || !RunSlotsReady() || g_in_guarantee_worker || IsParallelWorker() ||
        g_lowered_from >= 0 || !query_desc->plannedstmt->parallelModeNeeded)
        return;
    uint32 reserved = ReservedWorkers();
    if (reserved == 0) return;
    g_lowered_from = max_parallel_workers;
    max_parallel_workers = Max(0, max_parallel_workers - static_cast<int>(reserved));
}

void RestoreReservation() {
    if (g_lowered_from >= 0) {
        max_parallel_workers = g_lowered_from;
        g_lowered_from = -1;
    }
}

void GuaranteeExecutorEndBody(QueryDesc *query_desc) {
    RestoreReservation();
    if (prev_ExecutorEnd)
        prev_ExecutorEnd(query_desc);
    else
        standard_ExecutorEnd(query_desc);
}

get_relation_info_hook_type prev_get_relation_info = nullptr;

TupleTableSlot *ExecGatherWrapper(PlanState *node);
TupleTableSlot *ExecChildFirstCall(PlanState *node);
void GuaranteeExecutorEnd(QueryDesc *query_desc);

Wrapped *FindByGather(PlanState *node) {
    for (int i = 0; i < g_nwrapped; i++)
        if (g_wrapped[i].gather == node) return &g_wrapped[i];
    return nullptr;
}

Wrapped *FindByChild(PlanState *node) {
    for (int i = 0; i < g_nwrapped; i++)
        if (g_wrapped[i].child == node) return &g_wrapped[i];
    return nullptr;
}

int PlannedWorkers(PlanState *gather) {
    if (IsA(gather->plan, Gather)) return castNode(Gather, gather->plan)->num_workers;
    return castNode(GatherMerge, gather->plan)->num_workers;
}

int LaunchedWorkers(PlanState *gather) {
    if (IsA(gather, GatherState)) return castNode(GatherState, gather)->nworkers_launched;
    return castNode(GatherMergeState, gather)->nworkers_launched;
}

bool GatherInitialized(PlanState *gather) {
    if (IsA(gather, GatherState)) return castNode(GatherState, gather)->initialized;
    return castNode(GatherMergeState, gather)->initialized;
}

void RestoreParticipation() {
    if (g_participation_forced) {
        parallel_leader_participation = g_saved_participation;
        g_participation_forced = false;
    }
}

/* Judges one launch: publishes it, says it, and abandons the attempt when short. */
void JudgeLaunchOf(Wrapped *w) {
    w->judged = true;
    RestoreParticipation();
    int planned = PlannedWorkers(w->gather);
    int launched = LaunchedWorkers(w->gather);
    RecordLaunch(w->gather->state->es_plannedstmt->queryId, planned, launched);
    if (g_monitor.launches++ == 0) g_monitor.first_launch_at = GetCurrentTimestamp();
    g_monitor.min_launched = Min(g_monitor.min_launched, launched);
    PublishLaunch(g_monitor.slot_index, g_monitor.run_id, planned, launched);

    LaunchVerdict verdict = JudgeLaunch(g_monitor.options, g_monitor.attempt, launched);
    RunOptions shown = g_monitor.options;
    shown.max_attempts = g_monitor.shown_max_attempts;
    char *message = CoreText([&] { return LaunchMessage(g_monitor.run_id, g_monitor.attempt, shown,
                                             planned, launched, verdict); });
    /* One line for a target met: later Gathers of the attempt that meet it too say nothing more. */
    if (verdict != LaunchVerdict::kTargetMet || g_monitor.launches == 1)
        SayProgress(message, verdict != LaunchVerdict::kTargetMet);
    switch (verdict) {
        case LaunchVerdict::kTargetMet:
            return;
        case LaunchVerdict::kAcceptDegraded:
            g_monitor.degraded = true;
            return;
        case LaunchVerdict::kAbandonAndRetry:
            g_monitor.abandon = AttemptOutcome::kAbandoned;
            break;
        case LaunchVerdict::kAbandonAndFail:
            g_monitor.abandon = AttemptOutcome::kFailedShort;
            break;
    }
    /*
     * query_canceled, because PL/pgSQL's WHEN OTHERS does not catch it; the worker knows
     * from g_monitor.abandon that this was us, and the caller never sees this error.
     */
    ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                    errmsg("parallel_guarantee: attempt %d abandoned with %d of %d workers",
                           g_monitor.attempt, launched, g_monitor.options.target_workers)));
}

TupleTableSlot *ExecChildFirstCallBody(PlanState *node) {
    Wrapped *w = FindByChild(node);
    if (w == nullptr) elog(ERROR, "parallel_guarantee: lost track of a wrapped plan node");
    /* Unwrap first: every later call goes straight to the real node. */
    node->ExecProcNodeReal = w->child_real;
    if (node->ExecProcNode == ExecChildFirstCall) node->ExecProcNode = w->child_real;
    bool suppress_local = w->forced_leader;
    w->forced_leader = false;
    if (!w->judged) JudgeLaunchOf(w);
    /* Participation was off: the leader must not scan; "no tuples" ends its local part. */
    if (suppress_local) return nullptr;
    return w->child_real(node);
}

void ArmChild(Wrapped *w) {
    PlanState *child = w->child;
    if (child == nullptr || child->ExecProcNodeReal == ExecChildFirstCall) return;
    w->child_real = child->ExecProcNodeReal;
    child->ExecProcNodeReal = ExecChildFirstCall;
    if (child->ExecProcNode == w->child_real) child->ExecProcNode = ExecChildFirstCall;
}

/* A Gather about to launch: the pool judged first (JudgePoolBeforeLaunching). */
void JudgePoolBeforeLaunch(Wrapped *w) {
    PlanState *node = w->gather;
    if (!node->state->es_use_parallel_mode) return;
    JudgePoolBeforeLaunching(PlannedWorkers(node));
}

TupleTableSlot *ExecGatherWrapperBody(PlanState *node) {
    Wrapped *w = FindByGather(node);
    if (w == nullptr) elog(ERROR, "parallel_guarantee: lost track of a Gather node");
    bool launching = !GatherInitialized(node);
    if (launching && g_monitor.active) JudgePoolBeforeLaunch(w);
    if (launching && g_monitor.active) {
        /* A first call or a rescan: workers are about to be launched (again). */
        w->judged = false;
        ArmChild(w);
        if (!parallel_leader_participation) {
            g_saved_participation = parallel_leader_participation;
            parallel_leader_participation = true;
            g_participation_forced = true;
            w->forced_leader = true;
        }
    }
    TupleTableSlot *slot = w->gather_real(node);
    if (launching && g_monitor.active && !w->judged) JudgeLaunchOf(w);
    return slot;
}

/* planstate_tree_walker over ps's children; before PostgreSQL 16 it takes bool (*)(). */
bool WalkChildren(PlanState *ps, bool (*walker)(PlanState *, void *), void *context) {
#if PG_VERSION_NUM >= 160000
    return planstate_tree_walker(ps, walker, context);
#else
    auto generic = reinterpret_cast<void (*)(void)>(walker);
    return planstate_tree_walker(ps, reinterpret_cast<bool (*)()>(generic), context);
#endif
}

/* The first parallel-aware scan under a Gather: the table whose size set its degree. */
struct ScanSearch {
    EState *estate;
    Oid relid;
};

bool FindParallelScan(PlanState *ps, void *context) {
    if (ps == nullptr) return false;
    auto *search = static_cast<ScanSearch *>(context);
    Plan *plan = ps->plan;
    if (plan->parallel_aware &&
        (IsA(plan, SeqScan) || IsA(plan, IndexScan) || IsA(plan, IndexOnlyScan) ||
         IsA(plan, BitmapHeapScan))) {
        Index scanrelid = reinterpret_cast<Scan *>(plan)->scanrelid;
        if (scanrelid > 0) {
            search->relid = rt_fetch(scanrelid, search->estate->es_range_table)->relid;
            return true;
        }
    }
    return WalkChildren(ps, FindParallelScan, context);
}

struct GatherSearch {
    EState *estate;
    int count;
    int fewest_planned;
    PlanState *fewest;
};

bool WrapGathers(PlanState *ps, void *context) {
    if (ps == nullptr) return false;
    auto *search = static_cast<GatherSearch *>(context);
    if (IsA(ps, GatherState) || IsA(ps, GatherMergeState)) {
        int planned = PlannedWorkers(ps);
        search->count++;
        if (planned < search->fewest_planned) {
            search->fewest_planned = planned;
            search->fewest = ps;
        }
        if (g_nwrapped < kMaxWrapped) {
            Wrapped *w = &g_wrapped[g_nwrapped++];
            w->gather = ps;
            w->child = outerPlanState(ps);
            w->gather_real = ps->ExecProcNodeReal;
            w->child_real = nullptr;
            w->judged = false;
            w->forced_leader = false;
            ps->ExecProcNodeReal = ExecGatherWrapper;
            if (ps->ExecProcNode == w->gather_real) ps->ExecProcNode = ExecGatherWrapper;
        }
    }
    return WalkChildren(ps, WrapGathers, context);
}

void RaisePlannedFewer(GatherSearch *search) {
    ScanSearch scan{search->estate, InvalidOid};
    FindParallelScan(outerPlanState(search->fewest), &scan);
    char *relname = OidIsValid(scan.relid) ? get_rel_name(scan.relid) : nullptr;
    int target = g_monitor.options.target_workers;
    g_monitor.abandon = AttemptOutcome::kPlannedFewer;
    if (relname != nullptr)
        ereport(ERROR,
                (errcode(ERRCODE_PG_PLANNED_FEWER),
                 errmsg("the planner planned only %d of the %d parallel workers for table \"%s\", "
                        "so retrying cannot help",
                        search->fewest_planned, target, relname),
                 errdetail("PostgreSQL gives a table one worker for its first "
                           "min_parallel_table_scan_size and one more each time it triples in "
                           "size, unless the table's parallel_workers setting says otherwise."),
                 errhint("Run ALTER TABLE %s SET (parallel_workers = %d), lower target_workers "
                         "to %d, or pass force_workers => true.",
                         quote_identifier(relname), target, search->fewest_planned)));
    ereport(ERROR,
            (errcode(ERRCODE_PG_PLANNED_FEWER),
             errmsg("the planner planned only %d of the %d parallel workers, so retrying "
                    "cannot help",
                    search->fewest_planned, target),
             errhint("Set the parallel_workers storage parameter of the scanned tables, lower "
                     "target_workers, or pass force_workers => true.")));
}

void RaiseNoParallelPlan() {
    g_monitor.abandon = AttemptOutcome::kNoParallelPlan;
    if (g_monitor.executor_starts == 0) RaiseRunsNoQuery();
    if (g_monitor.kind == StatementKind::kModifying)
        ereport(ERROR,
                (errcode(ERRCODE_PG_NO_PARALLEL_PLAN),
                 errmsg("the statement has no parallel plan, so no number of attempts can give "
                        "it parallel workers"),
                 errdetail("PostgreSQL never plans INSERT, UPDATE, DELETE or MERGE in parallel; "
                           "only their read side could be, and it is not here."),
                 errhint("Build the result with CREATE TABLE ... AS SELECT (which runs in "
                         "parallel) and swap or merge it in a second step.")));
    ereport(ERROR,
            (errcode(ERRCODE_PG_NO_PARALLEL_PLAN),
             errmsg("the statement has no parallel plan, so no number of attempts can give it "
                    "parallel workers"),
             errdetail("The planner chose a plan without a Gather node: the statement may call "
                       "a parallel-unsafe function, or its tables are too small for parallel "
                       "query."),
             errhint("Check the plan with EXPLAIN, mark functions PARALLEL SAFE where they are, "
                     "or pass force_workers => true to plan the target degree.")));
}

/*
 * Every other session's Gathers: counted once, when each first runs (its launch), by a
 * wrapper that puts the node's own function back before calling it, so no tuple ever goes
 * through it.  The node's own function is ExecGather or ExecGatherMerge (static in
 * PostgreSQL): read from the first node of each kind; a node whose function is something
 * else (another extension's wrapper) is not counted.
 */
ExecProcNodeMtd g_gather_real = nullptr;
ExecProcNodeMtd g_gather_merge_real = nullptr;

TupleTableSlot *CountLaunchOnFirstCall(PlanState *node);

TupleTableSlot *CountLaunchOnFirstCallBody(PlanState *node) {
    ExecProcNodeMtd real = IsA(node, GatherState) ? g_gather_real : g_gather_merge_real;
    node->ExecProcNodeReal = real;
    if (node->ExecProcNode == CountLaunchOnFirstCall) node->ExecProcNode = real;
    TupleTableSlot *slot = real(node);
    /* Launched only in parallel mode (not, say, in a cursor that can scroll backwards). */
    if (GatherInitialized(node) && node->state->es_use_parallel_mode)
        RecordLaunch(node->state->es_plannedstmt->queryId, PlannedWorkers(node), LaunchedWorkers(node));
    return slot;
}

bool WrapGathersForCounting(PlanState *ps, void *context) {
    if (ps == nullptr) return false;
    if ((IsA(ps, GatherState) || IsA(ps, GatherMergeState)) && PlannedWorkers(ps) > 0) {
        ExecProcNodeMtd &real = IsA(ps, GatherState) ? g_gather_real : g_gather_merge_real;
        if (real == nullptr) real = ps->ExecProcNodeReal;
        if (ps->ExecProcNodeReal == real) {
            ps->ExecProcNodeReal = CountLaunchOnFirstCall;
            if (ps->ExecProcNode == real) ps->ExecProcNode = CountLaunchOnFirstCall;
        }
    }
    return WalkChildren(ps, WrapGathersForCounting, context);
}

void GuaranteeExecutorStartBody(QueryDesc *query_desc, int eflags) {
    if (prev_ExecutorStart)
        prev_ExecutorStart(query_desc, eflags);
    else
        standard_ExecutorStart(query_desc, eflags);

    if (!g_monitor.active && (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0) {
        LowerForReservation(query_desc);
        if (g_track_downgrades && query_desc->plannedstmt->parallelModeNeeded)
            (void) WrapGathersForCounting(query_desc->planstate, nullptr);
    }
    if (!g_monitor.active || (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0) return;
    bool first = g_monitor.executor_starts++ == 0;

    GatherSearch search{query_desc->estate, 0, INT_MAX, nullptr};
    WrapGathers(query_desc->planstate, &search);
    g_monitor.min_planned = Min(g_monitor.min_planned, search.fewest_planned);
    if (search.count > 0 && search.fewest_planned < g_monitor.options.target_workers)
        RaisePlannedFewer(&search);
    if (first && search.count == 0 &&
        (g_monitor.kind == StatementKind::kQuery || g_monitor.kind == StatementKind::kModifying))
        RaiseNoParallelPlan();
}

void GuaranteeRelationInfoBody(PlannerInfo *root, Oid relation_id, bool inhparent, RelOptInfo *rel) {
    if (prev_get_relation_info) prev_get_relation_info(root, relation_id, inhparent, rel);
    /* force_workers: plan the target degree for every scanned table, like a "hard" hint. */
    if (g_monitor.active && g_monitor.force_workers)
        rel->rel_parallel_workers = Max(rel->rel_parallel_workers, g_monitor.options.target_workers);
    /* An index build about to be planned (plan_create_index_workers): watched by maintenance.cpp. */
    if (g_monitor.active &&
        (g_monitor.kind == StatementKind::kMaintenance || g_monitor.kind == StatementKind::kConcurrentBuild) &&
        IsIndexBuildPlanning(root))
        MaintenancePlanning(relation_id);
}


/*
 * What PostgreSQL calls: each hook and plan-node wrapper goes through the C++ wall
 * (errors.hpp), so no C++ exception ever unwinds through the executor's frames.
 */
void GuaranteeExecutorStart(QueryDesc *query_desc, int eflags) {
    CatchingCall([&] { GuaranteeExecutorStartBody(query_desc, eflags); });
}
void GuaranteeExecutorEnd(QueryDesc *query_desc) {
    CatchingCall([&] { GuaranteeExecutorEndBody(query_desc); });
}
void GuaranteeRelationInfo(PlannerInfo *root, Oid relation_id, bool inhparent, RelOptInfo *rel) {
    CatchingCall([&] { GuaranteeRelationInfoBody(root, relation_id, inhparent, rel); });
}
TupleTableSlot *ExecChildFirstCall(PlanState *node) {
    return CatchingCall([&] { return ExecChildFirstCallBody(node); });
}
TupleTableSlot *ExecGatherWrapper(PlanState *node) {
    return CatchingCall([&] { return ExecGatherWrapperBody(node); });
}
TupleTableSlot *CountLaunchOnFirstCall(PlanState *node) {
    return CatchingCall([&] { return CountLaunchOnFirstCallBody(node); });
}
void RestoreAtTransactionEnd(XactEvent, void *) {
    CatchingCall([] { RestoreReservation(); });
}
void RestoreAtSubtransactionEnd(SubXactEvent, SubTransactionId, SubTransactionId, void *) {
    CatchingCall([] { RestoreReservation(); });
}

}  // namespace

void JudgePoolBeforeLaunching(int planned) {
    WorkerPool pool = ReadWorkerPool();
    int free_workers = Max(0, Min(max_parallel_workers - pool.active_parallel, pool.total_slots - pool.used_slots));
    int can_get = Min(planned, free_workers);
    if (can_get >= g_monitor.options.target_workers ||
        JudgeLaunch(g_monitor.options, g_monitor.attempt, can_get) != LaunchVerdict::kAbandonAndRetry)
        return;
    g_monitor.launches++;
    g_monitor.min_launched = Min(g_monitor.min_launched, can_get);
    PublishLaunch(g_monitor.slot_index, g_monitor.run_id, planned, can_get);
    char *message = psprintf("run %lld: attempt %d/%d: only %d of %d planned workers free (target %d), "
                             "short of target: abandoned before launching, will retry",
                             static_cast<long long>(g_monitor.run_id), g_monitor.attempt,
                             g_monitor.shown_max_attempts, can_get, planned, g_monitor.options.target_workers);
    SayProgress(message, true);
    g_monitor.abandon = AttemptOutcome::kAbandoned;
    ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                    errmsg("parallel_guarantee: attempt %d abandoned before launching: %d of %d workers free",
                           g_monitor.attempt, can_get, g_monitor.options.target_workers)));
}

void InstallMonitorHooks() {
    prev_ExecutorStart = ExecutorStart_hook;
    ExecutorStart_hook = GuaranteeExecutorStart;
    prev_get_relation_info = get_relation_info_hook;
    get_relation_info_hook = GuaranteeRelationInfo;
    prev_ExecutorEnd = ExecutorEnd_hook;
    ExecutorEnd_hook = GuaranteeExecutorEnd;
    RegisterXactCallback(RestoreAtTransactionEnd, nullptr);
    RegisterSubXactCallback(RestoreAtSubtransactionEnd, nullptr);
}

void MonitorBegin(int64 run_id, int slot_index, int attempt, const RunOptions &options,
                  int shown_max_attempts, bool force_workers, StatementKind kind) {
    g_monitor = MonitorState{};
    g_monitor.run_id = run_id;
    g_monitor.slot_index = slot_index;
    g_monitor.attempt = attempt;
    g_monitor.options = options;
    g_monitor.shown_max_attempts = shown_max_attempts;
    g_monitor.force_workers = force_workers;
    g_monitor.kind = kind;
    g_monitor.min_planned = INT_MAX;
    g_monitor.min_launched = INT_MAX;
    g_monitor.abandon = AttemptOutcome::kNone;
    g_nwrapped = 0;
    g_monitor.active = true;
    if (kind == StatementKind::kMaintenance || kind == StatementKind::kVacuum || kind == StatementKind::kConcurrentBuild)
        MaintenanceBegin();
}

void MonitorCheckBeforeCommit() {
    if (g_monitor.kind == StatementKind::kMaintenance && MaintenanceCheckBeforeCommit()) return;
    /* The statement caught our error (a PL/pgSQL handler naming it): raise it again. */
    if (g_monitor.abandon == AttemptOutcome::kNoParallelPlan) RaiseNoParallelPlan();
    if (g_monitor.abandon == AttemptOutcome::kPlannedFewer)
        ereport(ERROR, (errcode(ERRCODE_PG_PLANNED_FEWER),
                        errmsg("the planner planned only %d of the %d parallel workers, so "
                               "retrying cannot help",
                               g_monitor.min_planned, g_monitor.options.target_workers),
                        errhint("Set the parallel_workers storage parameter of the scanned "
                                "tables, lower target_workers, or pass force_workers => true.")));
    if (g_monitor.abandon != AttemptOutcome::kNone)
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                        errmsg("parallel_guarantee: attempt %d was abandoned", g_monitor.attempt)));
    if (g_monitor.launches == 0) RaiseNoParallelPlan();
}

void MonitorEnd() {
    if (g_monitor.kind == StatementKind::kMaintenance || g_monitor.kind == StatementKind::kVacuum ||
        g_monitor.kind == StatementKind::kConcurrentBuild)
        MaintenanceEnd();
    if (g_monitor.kind == StatementKind::kVacuum) VacuumAttemptEnded();
    g_monitor.active = false;
    g_nwrapped = 0;
    RestoreParticipation();
}

}  // namespace pgguarantee
