/*
 * maintenance.cpp: see maintenance.hpp.
 *
 * The timer's handler runs in a signal handler: it reads the slot array without a lock
 * (shmem/pool.hpp), judges with pure functions of the core, and, to abandon, asks for a
 * cancel the way statement_timeout does (QueryCancelPending and the latch).  The build's
 * next CHECK_FOR_INTERRUPTS raises the cancel; the attempt's rollback removes the half-built
 * index and DestroyParallelContext waits for its workers to exit.  Everything else (the
 * NOTICE, the activity view, the statistics) waits for a point where ereport is allowed.
 */
#include "pg/worker/maintenance.hpp"

#include "core/maintenance.hpp"
#include "pg/parallel_guarantee.hpp"
#include "pg/shmem/downgrades.hpp"
#include "pg/shmem/pool.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/spi_xact.hpp"
#include "pg/worker/monitor.hpp"

#include <climits>
#include <csignal>

extern "C" {
#include "access/amapi.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_inherits.h"
#include "optimizer/paths.h"
#include "storage/lmgr.h"
#include "catalog/objectaccess.h"
#include "commands/progress.h"
#include "utils/backend_status.h"
#include "utils/rel.h"
#include "utils/timeout.h"
}

namespace pgguarantee {

namespace {

/* One launch, from its planning until it is reported.  The handler writes the volatile part. */
struct Watch {
    volatile sig_atomic_t watching;    /* planned, not yet reported */
    volatile sig_atomic_t verdict;     /* LaunchWatch */
    volatile sig_atomic_t launched;    /* registered when judged */
    volatile sig_atomic_t judgement;   /* LaunchVerdict, when judged */
    volatile sig_atomic_t cancelled;   /* the handler asked for the cancel */
    volatile sig_atomic_t most_seen;
    volatile sig_atomic_t last_count;
    volatile sig_atomic_t same_looks;
    volatile sig_atomic_t full_looks;
    volatile sig_atomic_t ever_full;   /* some look saw the pool full */
    volatile sig_atomic_t looks;
    volatile int64 judged_at;
    int64 planned_at;
    int planned;     /* -1: could not be computed */
    Oid table_id;
    RunOptions options;
    int attempt;
};

Watch g_watch;

void ResetWatch() {
    Watch &w = g_watch;
    w.watching = 0;
    w.verdict = static_cast<int>(LaunchWatch::kWaiting);
    w.launched = 0;
    w.judgement = 0;
    w.cancelled = 0;
    w.most_seen = 0;
    w.last_count = -1;
    w.same_looks = 0;
    w.full_looks = 0;
    w.ever_full = 0;
    w.looks = 0;
    w.judged_at = 0;
    w.planned_at = 0;
    w.planned = -1;
    w.table_id = InvalidOid;
    w.options = RunOptions{};
    w.attempt = 0;
}
TimeoutId g_timeout = MAX_TIMEOUTS;
bool g_timer_on = false;
bool g_in_planning = false;       /* our own call of plan_create_index_workers */
Oid g_last_created = InvalidOid;  /* the last relation created during the attempt */
int g_plannings = 0;              /* index builds planned during the attempt */
bool g_nothing_to_build = false;  /* CREATE INDEX IF NOT EXISTS of an index that exists */
/* The background-worker slots the launch's workers were seen in (max_worker_processes long). */
bool *g_seen_slots = nullptr;
int g_nseen_slots = 0;
object_access_hook_type prev_object_access_hook = nullptr;

bool Active() {
    return g_monitor.active &&
           (g_monitor.kind == StatementKind::kMaintenance || g_monitor.kind == StatementKind::kConcurrentBuild);
}

/*
 * The timer: one look at the launch being watched.  The workers counted are every one seen
 * in a slot since the launch began, so that a worker of a small build that has already
 * finished still counts.  While nothing is decided the handler asks for the next look in a
 * millisecond (from inside the handler, as timeout.c allows: the timeout was removed from
 * its list before the handler ran); once decided it asks for none.
 */
void LookAtLaunch(void) {
    Watch &w = g_watch;
    if (!w.watching || w.verdict != static_cast<int>(LaunchWatch::kWaiting)) return;
    int alive = 0;
    bool full = false;
    if (!CountLeaderWorkers(MyProcPid, g_seen_slots, g_nseen_slots, &alive, &full)) return;
    int count = 0;
    for (int i = 0; i < g_nseen_slots; i++) count += g_seen_slots[i] ? 1 : 0;
    w.looks = w.looks + 1;
    if (count > w.most_seen) w.most_seen = count;
    if (count == w.last_count) {
        w.same_looks = w.same_looks + 1;
    } else {
        w.last_count = count;
        w.same_looks = 1;
    }
    w.full_looks = full ? w.full_looks + 1 : 0;
    if (full) w.ever_full = 1;
    LaunchWatch seen = WatchLaunch(count, w.options.target_workers, full, w.same_looks, w.full_looks);
    if (seen == LaunchWatch::kWaiting) {
        enable_timeout_after(g_timeout, 1);
        return;
    }
    LaunchVerdict verdict = JudgeLaunch(w.options, w.attempt, count);
    w.launched = count;
    w.judgement = static_cast<int>(verdict);
    w.judged_at = GetCurrentTimestamp();
    w.verdict = static_cast<int>(seen);
    PublishLaunchedUnlocked(g_monitor.slot_index, g_monitor.run_id, count);
    if (verdict == LaunchVerdict::kAbandonAndRetry || verdict == LaunchVerdict::kAbandonAndFail) {
        w.cancelled = 1;
        QueryCancelPending = true;
        InterruptPending = true;
        SetLatch(MyLatch);
    }
}


void StopTimer() {
    if (g_timer_on) {
        disable_timeout(g_timeout, false);
        g_timer_on = false;
    }
}

AttemptOutcome AbandonOutcome(LaunchVerdict verdict) {
    return verdict == LaunchVerdict::kAbandonAndFail ? AttemptOutcome::kFailedShort : AttemptOutcome::kAbandoned;
}

/* Publishes and says a launch, as JudgeLaunchOf does for a Gather. */
void ReportLaunch(int planned, int launched, LaunchVerdict verdict, TimestampTz at) {
    RecordLaunch(pgstat_get_my_query_id(), planned, launched);
    if (g_monitor.launches++ == 0) g_monitor.first_launch_at = at;
    g_monitor.min_launched = Min(g_monitor.min_launched, launched);
    PublishLaunch(g_monitor.slot_index, g_monitor.run_id, planned, launched);
    RunOptions shown = g_monitor.options;
    shown.max_attempts = g_monitor.shown_max_attempts;
    char *message = CoreText([&] { return LaunchMessage(g_monitor.run_id, g_monitor.attempt, shown, planned,
                                                        launched, verdict); });
    if (verdict != LaunchVerdict::kTargetMet || g_monitor.launches == 1)
        SayProgress(message, verdict != LaunchVerdict::kTargetMet);
    if (verdict == LaunchVerdict::kAcceptDegraded) g_monitor.degraded = true;
}

/*
 * Reports the launch being watched.  One the timer did not judge (the build ended first, or
 * never launched) is judged here on the most workers it was seen with; may_raise: abandon
 * it now, otherwise the attempt is already ending.
 */
void Flush(bool may_raise) {
    Watch &w = g_watch;
    if (!w.watching) return;
    StopTimer();
    w.watching = 0;
    int planned = w.planned >= 0 ? w.planned : w.options.target_workers;
    bool judged = w.verdict != static_cast<int>(LaunchWatch::kWaiting);
    int launched = judged ? w.launched : w.most_seen;
    /*
     * A build that ended before the timer decided (a small one, or a leader that was not
     * scheduled meanwhile): a registration fails only when the pool is full, so if no look
     * ever saw it full, every planned worker was registered.
     */
    if (!judged && !w.ever_full && launched < planned) launched = planned;
    LaunchVerdict verdict = judged ? static_cast<LaunchVerdict>(static_cast<int>(w.judgement))
                                   : JudgeLaunch(w.options, w.attempt, launched);
    ReportLaunch(planned, launched, verdict, judged ? w.judged_at : GetCurrentTimestamp());
    if (verdict != LaunchVerdict::kAbandonAndRetry && verdict != LaunchVerdict::kAbandonAndFail) return;
    g_monitor.abandon = AbandonOutcome(verdict);
    if (may_raise && !w.cancelled)
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                        errmsg("parallel_guarantee: attempt %d abandoned with %d of %d workers", w.attempt, launched,
                               w.options.target_workers)));
}

/* The index whose build plan_create_index_workers is planning for table_id. */
Oid IndexBeingBuilt(Oid table_id) {
    auto builds = [&](Oid index_id) {
        return OidIsValid(index_id) && get_rel_relkind(index_id) == RELKIND_INDEX &&
               IndexGetRelation(index_id, true) == table_id;
    };
    /*
     * The index pg_stat_progress_create_index reports: REINDEX's (each copy a concurrent one
     * builds), a concurrent CREATE INDEX's; a plain CREATE INDEX reports it only once built.
     */
    if (MyBEEntry != nullptr && MyBEEntry->st_progress_command == PROGRESS_COMMAND_CREATE_INDEX) {
        Oid index_id = static_cast<Oid>(MyBEEntry->st_progress_param[PROGRESS_CREATEIDX_INDEX_OID]);
        if (builds(index_id)) return index_id;
    }
    /* CREATE INDEX: the index just created (in the catalog since the command counter moved). */
    if (builds(g_last_created)) return g_last_created;
    return InvalidOid;
}

/* PostgreSQL plans fewer workers for the build than the target: 53G03, with the way out. */
void RaisePlannedFewerBuild(Oid table_id, Oid index_id, int planned, const char *index_name = nullptr) {
    int target = g_monitor.options.target_workers;
    g_monitor.abandon = AttemptOutcome::kPlannedFewer;
    if (OidIsValid(index_id)) index_name = get_rel_name(index_id);
    const char *table = quote_identifier(get_rel_name(table_id));
    Relation rel = table_open(table_id, NoLock);
    int table_setting = RelationGetParallelWorkers(rel, -1);
    bool temp = rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP;
    table_close(rel, NoLock);
    /* Each participant, the leader included, needs 32 MB of maintenance_work_mem (in kB). */
    int memory_allows = maintenance_work_mem / 32768 - 1;
    const char *hint;
    if (temp)
        hint = "Parallel workers cannot read a temporary table: build the index directly.";
    else if (table_setting < 0 && memory_allows < target && planned >= memory_allows)
        hint = psprintf("maintenance_work_mem (%d MB) holds %d of the %d workers at 32 MB per process, the leader "
                        "included: SET maintenance_work_mem = '%dMB' before the call, ALTER TABLE %s SET "
                        "(parallel_workers = %d), or pass force_workers => true.",
                        maintenance_work_mem / 1024, Max(memory_allows, 0), target, (target + 1) * 32, table, target);
    else if (planned == 0 && (table_setting >= target || g_monitor.force_workers))
        hint = "The index's expressions or predicate call a function not marked PARALLEL SAFE, and PostgreSQL "
               "builds such an index serially: mark the functions PARALLEL SAFE where they are, or build the "
               "index directly.";
    else if (table_setting >= 0 && table_setting < target)
        hint = psprintf("The table's parallel_workers is %d: ALTER TABLE %s SET (parallel_workers = %d), lower "
                        "target_workers to %d, or pass force_workers => true.",
                        table_setting, table, target, planned);
    else
        hint = psprintf("ALTER TABLE %s SET (parallel_workers = %d)%s, or pass force_workers => true.", table, target,
                        planned > 0 ? psprintf(", lower target_workers to %d", planned) : "");
    ereport(ERROR,
            (errcode(ERRCODE_PG_PLANNED_FEWER),
             index_name != nullptr
                 ? errmsg("PostgreSQL plans only %d of the %d parallel workers for building index \"%s\" on table "
                          "\"%s\", so retrying cannot help",
                          planned, target, index_name, get_rel_name(table_id))
                 : errmsg("PostgreSQL plans only %d of the %d parallel workers for building an index on table "
                          "\"%s\", so retrying cannot help",
                          planned, target, get_rel_name(table_id)),
             errdetail("An index build gets the table's parallel_workers setting when it has one; otherwise one "
                       "worker for its first min_parallel_table_scan_size and one more each time the table "
                       "triples, as many as maintenance_work_mem holds at 32 MB per process."),
             errhint("%s", hint)));
}


/* True when PostgreSQL builds an index of this access method in parallel. */
bool BuildsInParallel(Relation index) {
#if PG_VERSION_NUM >= 170000
    return index->rd_indam->amcanbuildparallel;
#else
    return index->rd_rel->relam == BTREE_AM_OID;
#endif
}

/*
 * The degree PostgreSQL will plan for building an index on the table, before the index
 * exists: plan_create_index_workers' rule without the index (its expressions' parallel
 * safety is checked at the build itself).  The table is locked by the caller.
 */
int PredictBuildWorkers(Oid table_id) {
    Relation rel = table_open(table_id, NoLock);
    int workers = 0;
    if (rel->rd_rel->relpersistence != RELPERSISTENCE_TEMP) {
        RelOptInfo *info = makeNode(RelOptInfo);
        info->rel_parallel_workers = RelationGetParallelWorkers(rel, -1);
        if (g_monitor.force_workers)
            info->rel_parallel_workers = Max(info->rel_parallel_workers, g_monitor.options.target_workers);
        if (info->rel_parallel_workers != -1) {
            workers = Min(info->rel_parallel_workers, max_parallel_maintenance_workers);
        } else {
            BlockNumber pages = 0;
            double tuples = 0, allvisfrac = 0;
            estimate_rel_size(rel, nullptr, &pages, &tuples, &allvisfrac);
            workers = compute_parallel_worker(info, pages, -1, max_parallel_maintenance_workers);
            while (workers > 0 && maintenance_work_mem / (workers + 1) < 32768L) workers--;
        }
    }
    table_close(rel, NoLock);
    return workers;
}

void RefusePartitioned(const char *what) {
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("%s of a partitioned table or index cannot be guaranteed", what),
                    errdetail("PostgreSQL reindexes a partitioned table partition by partition, each in a transaction "
                              "of its own, and a run's statement runs in one transaction."),
                    errhint("Reindex each partition with its own call.")));
}

/*
 * Whether the calling role may build indexes on the table: the check PostgreSQL makes before
 * it takes any lock for CREATE INDEX (owner) and REINDEX (owner; from 17 the MAINTAIN
 * privilege).  The checks below take locks only when it may, so that a role cannot lock a
 * table through us that it could not lock by itself; otherwise the statement raises its own
 * error.
 */
/* Still in the catalog once locked (a concurrent DROP wins: the statement then says so). */
bool Exists(Oid relation_id) {
    return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relation_id));
}

bool MayBuildOn(Oid table_id, bool reindex) {
#if PG_VERSION_NUM >= 160000
    if (object_ownercheck(RelationRelationId, table_id, GetUserId())) return true;
#else
    if (pg_class_ownercheck(table_id, GetUserId())) return true;
#endif
#if PG_VERSION_NUM >= 170000
    if (reindex && pg_class_aclcheck(table_id, GetUserId(), ACL_MAINTAIN) == ACLCHECK_OK) return true;
#else
    (void) reindex;
#endif
    return false;
}

/* Every index build the REINDEX will do, checked as its planning will be. */
void CheckReindex(ReindexStmt *stmt) {
    bool concurrently = false;
    ListCell *opt_cell;
    foreach (opt_cell, stmt->params) {
        auto *opt = lfirst_node(DefElem, opt_cell);
        if (strcmp(opt->defname, "concurrently") == 0 && defGetBoolean(opt)) concurrently = true;
    }
    Oid table_id = InvalidOid;
    List *indexes = NIL;
    if (stmt->kind == REINDEX_OBJECT_INDEX) {
        Oid index_id = RangeVarGetRelid(stmt->relation, NoLock, true);
        if (!OidIsValid(index_id)) return;   /* REINDEX says what is wrong */
        if (get_rel_relkind(index_id) == RELKIND_PARTITIONED_INDEX) RefusePartitioned("REINDEX INDEX");
        if (get_rel_relkind(index_id) != RELKIND_INDEX) return;
        table_id = IndexGetRelation(index_id, false);
        if (!MayBuildOn(table_id, true)) return;
        /* The locks REINDEX INDEX takes, in its order; dropped meanwhile: REINDEX says so. */
        LockRelationOid(table_id, concurrently ? ShareUpdateExclusiveLock : ShareLock);
        LockRelationOid(index_id, concurrently ? ShareUpdateExclusiveLock : AccessExclusiveLock);
        if (!Exists(table_id) || !Exists(index_id)) return;
        indexes = list_make1_oid(index_id);
    } else {
        table_id = RangeVarGetRelid(stmt->relation, NoLock, true);
        if (!OidIsValid(table_id)) return;   /* REINDEX says what is wrong */
        if (get_rel_relkind(table_id) == RELKIND_PARTITIONED_TABLE) RefusePartitioned("REINDEX TABLE");
        if (!MayBuildOn(table_id, true)) return;
        LockRelationOid(table_id, concurrently ? ShareUpdateExclusiveLock : ShareLock);
        if (!Exists(table_id)) return;
        if (get_rel_relkind(table_id) != RELKIND_RELATION && get_rel_relkind(table_id) != RELKIND_MATVIEW) return;
        Relation rel = table_open(table_id, NoLock);
        indexes = RelationGetIndexList(rel);
        table_close(rel, NoLock);
    }
    ListCell *lc;
    foreach (lc, indexes) {
        Oid index_id = lfirst_oid(lc);
        LockRelationOid(index_id, concurrently ? ShareUpdateExclusiveLock : AccessExclusiveLock);
        if (!Exists(index_id)) continue;
        Relation index = index_open(index_id, NoLock);
        bool parallel = BuildsInParallel(index);
        index_close(index, NoLock);
        if (!parallel) continue;
        g_in_planning = true;
        int planned = plan_create_index_workers(table_id, index_id);
        g_in_planning = false;
        if (planned < g_monitor.options.target_workers) RaisePlannedFewerBuild(table_id, index_id, planned);
    }
}

/* An access method PostgreSQL builds in one process: 53G04 before anything is built. */
void CheckAccessMethod(const char *name) {
    if (name == nullptr) name = DEFAULT_INDEX_TYPE;
    Oid am_id = get_index_am_oid(name, true);
    if (!OidIsValid(am_id)) return;   /* CREATE INDEX says what is wrong */
#if PG_VERSION_NUM >= 170000
    bool parallel = GetIndexAmRoutineByAmId(am_id, false)->amcanbuildparallel;
#else
    bool parallel = am_id == BTREE_AM_OID;
#endif
    if (parallel) return;
    g_monitor.abandon = AttemptOutcome::kNoParallelPlan;
    ereport(ERROR, (errcode(ERRCODE_PG_NO_PARALLEL_PLAN),
                    errmsg("PostgreSQL builds %s indexes in one process, so no number of attempts can give the "
                           "build parallel workers",
                           name),
                    errdetail("Only some access methods build in parallel: btree, BRIN from PostgreSQL 17 and GIN "
                              "from 18, and extension access methods that say they can."),
                    errhint("Run the statement directly, without run_with_parallel_guarantee.")));
}

/* The tables a CREATE INDEX builds on (each partition of a partitioned table), checked first. */
void CheckCreateIndex(IndexStmt *stmt) {
    Oid table_id = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(table_id) || !MayBuildOn(table_id, false)) return;   /* CREATE INDEX says what is wrong */
    /* The lock the command takes (a concurrent build's lets writers go on). */
    LOCKMODE lockmode = stmt->concurrent ? ShareUpdateExclusiveLock : ShareLock;
    LockRelationOid(table_id, lockmode);
    if (!Exists(table_id)) return;
    CheckAccessMethod(stmt->accessMethod);
    if (stmt->if_not_exists && stmt->idxname != nullptr &&
        OidIsValid(get_relname_relid(stmt->idxname, get_rel_namespace(table_id)))) {
        g_nothing_to_build = true;
        return;
    }
    List *tables = get_rel_relkind(table_id) == RELKIND_PARTITIONED_TABLE && stmt->relation->inh
                       ? find_all_inheritors(table_id, lockmode, nullptr)
                       : list_make1_oid(table_id);
    ListCell *lc;
    foreach (lc, tables) {
        Oid part = lfirst_oid(lc);
        char kind = get_rel_relkind(part);
        if (kind != RELKIND_RELATION && kind != RELKIND_MATVIEW) continue;
        int planned = PredictBuildWorkers(part);
        if (planned < g_monitor.options.target_workers)
            RaisePlannedFewerBuild(part, InvalidOid, planned, part == table_id ? stmt->idxname : nullptr);
    }
}

void MaintenanceObjectAccessBody(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void *arg) {
    if (prev_object_access_hook) prev_object_access_hook(access, class_id, object_id, sub_id, arg);
    if (access == OAT_POST_CREATE && class_id == RelationRelationId && sub_id == 0 && Active())
        g_last_created = object_id;
}

void MaintenanceObjectAccess(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void *arg) {
    CatchingCall([&] { MaintenanceObjectAccessBody(access, class_id, object_id, sub_id, arg); });
}

}  // namespace

AttemptOutcome OutcomeOfAbandon(LaunchVerdict verdict) {
    return AbandonOutcome(verdict);
}

bool MayMaintain(Oid table_id, bool reindex) {
    return MayBuildOn(table_id, reindex);
}

void InstallMaintenanceHooks() {
    prev_object_access_hook = object_access_hook;
    object_access_hook = MaintenanceObjectAccess;
}

void MaintenanceBegin() {
    if (g_timeout == MAX_TIMEOUTS) g_timeout = RegisterTimeout(USER_TIMEOUT, LookAtLaunch);
    if (!PoolMirrorReady())
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("this server's background-worker slots are not laid out as parallel_guarantee "
                               "expects, so it cannot see an index build's workers"),
                        errhint("Run the index build directly.")));
    if (g_seen_slots == nullptr) {
        g_nseen_slots = max_worker_processes;
        g_seen_slots = static_cast<bool *>(MemoryContextAllocZero(TopMemoryContext, sizeof(bool) * g_nseen_slots));
    }
    ResetWatch();
    g_last_created = InvalidOid;
    g_plannings = 0;
    g_in_planning = false;
    g_nothing_to_build = false;
}

void MaintenanceEnd() {
    StopTimer();
    g_in_planning = false;
    if (g_watch.watching && g_watch.cancelled && g_monitor.abandon == AttemptOutcome::kNone)
        g_monitor.abandon = AbandonOutcome(static_cast<LaunchVerdict>(static_cast<int>(g_watch.judgement)));
}

bool IsIndexBuildPlanning(PlannerInfo *root) {
    return root != nullptr && root->parse != nullptr && root->parse->jointree == nullptr &&
           root->parse->commandType == CMD_SELECT && list_length(root->parse->rtable) == 1;
}

void MaintenancePlanning(Oid table_id) {
    if (!Active() || g_in_planning) return;
    /*
     * A TOAST table's index (REINDEX TABLE rebuilds it too) is built as PostgreSQL plans it,
     * serially as a rule: the guarantee is for the table's own indexes.
     */
    if (get_rel_relkind(table_id) == RELKIND_TOASTVALUE) return;
    /* A REINDEX TABLE builds its indexes one after another: the last one's launch first. */
    Flush(true);
    g_plannings++;
    Oid index_id = IndexBeingBuilt(table_id);
    int planned = -1;
    if (OidIsValid(index_id)) {
        /* PostgreSQL's own planning of this build, with this session's settings (our hook applies force_workers). */
        g_in_planning = true;
        planned = plan_create_index_workers(table_id, index_id);
        g_in_planning = false;
        if (planned < g_monitor.options.target_workers) RaisePlannedFewerBuild(table_id, index_id, planned);
    }
    g_monitor.min_planned = Min(g_monitor.min_planned, planned >= 0 ? planned : g_monitor.options.target_workers);
    JudgePoolBeforeLaunching(planned >= 0 ? planned : g_monitor.options.target_workers);

    ResetWatch();
    for (int i = 0; i < g_nseen_slots; i++) g_seen_slots[i] = false;
    /* The run's reservation ends here, as a Gather's does at its launch. */
    PublishLaunch(g_monitor.slot_index, g_monitor.run_id, planned >= 0 ? planned : g_monitor.options.target_workers, -1);
    g_watch.planned = planned;
    g_watch.table_id = table_id;
    g_watch.options = g_monitor.options;
    g_watch.attempt = g_monitor.attempt;
    g_watch.planned_at = GetCurrentTimestamp();
    g_watch.watching = 1;
    g_timer_on = true;
    enable_timeout_after(g_timeout, 1);
}

void MaintenanceBeforeStatement(const char *sql) {
    Node *stmt = linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT))->stmt;
    if (IsA(stmt, IndexStmt))
        CheckCreateIndex(castNode(IndexStmt, stmt));
    else if (IsA(stmt, ReindexStmt))
        CheckReindex(castNode(ReindexStmt, stmt));
}

uint64 RunConcurrentBuildAttempt(const char *sql) {
    /* The checks in a transaction of their own: their locks must not outlive them. */
    BeginSpiTransaction(sql);
    MaintenanceBeforeStatement(sql);
    EndSpiStatement();
    CommitTransactionCommand();
    uint64 rows = RunAtTopLevel(sql);
    /* Committed: a launch found short only now (the build ended between two looks) stays built. */
    Flush(false);
    if (g_monitor.abandon == AttemptOutcome::kAbandoned || g_monitor.abandon == AttemptOutcome::kFailedShort) {
        g_monitor.abandon = AttemptOutcome::kNone;
        g_monitor.degraded = true;
        SayProgress(psprintf("run %lld: the concurrent build had finished when its launch was found short: kept, "
                             "degraded",
                             static_cast<long long>(g_monitor.run_id)),
                    true);
    }
    return rows;
}

bool MaintenanceCheckBeforeCommit() {
    Flush(true);
    if (g_plannings > 0) return false;
    if (g_nothing_to_build) return true;
    g_monitor.abandon = AttemptOutcome::kNoParallelPlan;
    ereport(ERROR,
            (errcode(ERRCODE_PG_NO_PARALLEL_PLAN),
             errmsg("PostgreSQL built no index in parallel for this statement, so no number of attempts can give "
                    "it parallel workers"),
             errdetail("Only some access methods build in parallel: btree, BRIN from PostgreSQL 17 and GIN from "
                       "18, and extension access methods that say they can; a REINDEX of a table without such "
                       "an index builds nothing in parallel either."),
             errhint("Run the statement directly, without run_with_parallel_guarantee.")));
}

void MaintenanceReportAfterAttempt() {
    if (g_watch.watching) Flush(false);
}


}  // namespace pgguarantee
