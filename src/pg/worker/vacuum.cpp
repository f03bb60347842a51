/*
 * vacuum.cpp: see vacuum.hpp.
 *
 * PostgreSQL reports each parallel pass of a VACUUM right after its launch (DEBUG2, or INFO
 * with VERBOSE): "launched %d parallel vacuum workers for index vacuuming (planned: %d)".
 * An emit_log_hook reads the two numbers as the report is made, judges the pass (core
 * JudgePass, JudgeLaunch), and asks for the cancel when it is to be abandoned: the leader's
 * next interrupt check raises it.  log_min_messages is lowered to debug2 in the run's worker
 * for the command so that the report is made at all; parallel_guarantee.server_log_floor,
 * which its parallel workers inherit with the other settings, keeps every message the server
 * would not have logged out of the log.
 */
#include "pg/worker/vacuum.hpp"

#include "core/maintenance.hpp"
#include "pg/parallel_guarantee.hpp"
#include "pg/settings.hpp"
#include "pg/shmem/downgrades.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/spi_xact.hpp"
#include "pg/worker/maintenance.hpp"
#include "pg/worker/monitor.hpp"

#include <climits>

extern "C" {
#include "access/amapi.h"
#include "access/relation.h"
#include "commands/vacuum.h"
#include "optimizer/paths.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
}

namespace pgguarantee {

namespace {

/* A VACUUM attempt's passes, as their reports came. */
constexpr int kMaxPasses = kKeptPasses;
struct PassWatch {
    bool on;
    int passes;      /* passes seen (at most kMaxPasses recorded) */
    int launched[kMaxPasses];
    int planned[kMaxPasses];
    int seen_as[kMaxPasses];     /* LaunchWatch */
    int judgement[kMaxPasses];   /* LaunchVerdict */
    bool cancelled;
    int reported;    /* passes already said */
    int log_level;   /* log_min_messages before the command */
    RunOptions options;
    int attempt;     /* the attempt watched (0: none yet) */
};
PassWatch g_passes;
emit_log_hook_type prev_emit_log_hook = nullptr;

/* The report of a pass's launch, in this server's language (its message id is translated). */
bool IsPassReport(const char *id) {
    static const char *const kForms[][2] = {
        {"launched %d parallel vacuum worker for index vacuuming (planned: %d)",
         "launched %d parallel vacuum workers for index vacuuming (planned: %d)"},
        {"launched %d parallel vacuum worker for index cleanup (planned: %d)",
         "launched %d parallel vacuum workers for index cleanup (planned: %d)"},
    };
    if (id == nullptr) return false;
    static const unsigned long kCounts[] = {0, 1, 2, 3, 5, 11, 21, 22, 25, 101};
    for (const auto &form : kForms)
        for (unsigned long n : kCounts)
            if (strcmp(id, ngettext(form[0], form[1], n)) == 0) return true;
    return false;
}

/* The first two numbers of a message, in order. */
bool TwoNumbers(const char *text, int *first, int *second) {
    int found = 0;
    int values[2] = {0, 0};
    for (const char *c = text; *c != '\0' && found < 2; c++) {
        if (*c < '0' || *c > '9') continue;
        long value = strtol(c, const_cast<char **>(&c), 10);
        values[found++] = static_cast<int>(Min(value, static_cast<long>(INT_MAX)));
        c--;
    }
    *first = values[0];
    *second = values[1];
    return found == 2;
}

void ReadPassReport(ErrorData *edata) {
    PassWatch &v = g_passes;
    if (!v.on || !IsPassReport(edata->message_id)) return;
    int launched = 0, planned = 0;
    if (!TwoNumbers(edata->message, &launched, &planned)) return;
    int at = Min(v.passes, kMaxPasses - 1);
    v.passes++;
    LaunchWatch seen = JudgePass(launched, planned, v.options.target_workers);
    LaunchVerdict verdict = seen == LaunchWatch::kShort ? JudgeLaunch(v.options, v.attempt, launched)
                                                        : LaunchVerdict::kTargetMet;
    v.launched[at] = launched;
    v.planned[at] = planned;
    v.seen_as[at] = static_cast<int>(seen);
    v.judgement[at] = static_cast<int>(verdict);
    PublishLaunchedUnlocked(g_monitor.slot_index, g_monitor.run_id, launched);
    if (verdict == LaunchVerdict::kAbandonAndRetry || verdict == LaunchVerdict::kAbandonAndFail) {
        v.cancelled = true;
        QueryCancelPending = true;
        InterruptPending = true;
    }
}

void PassReportHookBody(ErrorData *edata) {
    if (g_passes.on && edata->elevel < ERROR) ReadPassReport(edata);
    /*
     * Logged only because a guaranteed VACUUM lowered log_min_messages (here, or in the leader
     * whose settings this parallel worker took): not for the server log.
     */
    if (g_server_log_floor >= 0 && edata->elevel < g_server_log_floor && edata->elevel != LOG &&
        edata->elevel != LOG_SERVER_ONLY)
        edata->output_to_server = false;
    if (prev_emit_log_hook) prev_emit_log_hook(edata);
}

void PassReportHook(ErrorData *edata) {
    /* Inside ereport: nothing here may raise (the core is called only for sums and compares). */
    PassReportHookBody(edata);
}

void SetLogLevel(const char *value) {
    (void) set_config_option("log_min_messages", value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0,
                             false);
}

char *g_saved_log_level = nullptr;

void StartPassWatch() {
    PassWatch &v = g_passes;
    v.passes = 0;
    v.cancelled = false;
    v.reported = 0;
    v.options = g_monitor.options;
    v.attempt = g_monitor.attempt;
    v.log_level = log_min_messages;
    if (g_saved_log_level != nullptr) pfree(g_saved_log_level);
    g_saved_log_level = MemoryContextStrdup(TopMemoryContext, GetConfigOption("log_min_messages", false, false));
    if (log_min_messages > DEBUG2) {
        char floor[16];
        snprintf(floor, sizeof floor, "%d", log_min_messages);
        (void) set_config_option("parallel_guarantee.server_log_floor", floor, PGC_SUSET, PGC_S_SESSION,
                                 GUC_ACTION_SET, true, 0, false);
        SetLogLevel("debug2");
    }
    v.on = true;
}

/*
 * Stops reading the reports, and puts log_min_messages back unless the VACUUM is still in
 * parallel mode (after an error, before the rollback, a setting cannot change: the rollback's
 * VacuumAttemptAborted puts it back).
 */
void StopPassWatch() {
    g_passes.on = false;
    if (g_saved_log_level != nullptr && !IsInParallelMode() && log_min_messages != g_passes.log_level) {
        SetLogLevel(g_saved_log_level);
        (void) set_config_option("parallel_guarantee.server_log_floor", "-1", PGC_SUSET, PGC_S_SESSION,
                                 GUC_ACTION_SET, true, 0, false);
    }
}

/* Says the passes not said yet (at a safe point), and counts them as launches. */
void ReportPasses() {
    PassWatch &v = g_passes;
    int passes = Min(static_cast<int>(v.passes), kMaxPasses);
    for (int pass = v.reported; pass < passes; pass++) {
        int launched = v.launched[pass];
        auto seen = static_cast<LaunchWatch>(v.seen_as[pass]);
        auto verdict = static_cast<LaunchVerdict>(v.judgement[pass]);
        RecordLaunch(pgstat_get_my_query_id(), v.planned[pass], launched);
        if (g_monitor.launches++ == 0) g_monitor.first_launch_at = GetCurrentTimestamp();
        /* A pass that asked for fewer and got them all is not a shortfall. */
        if (seen != LaunchWatch::kFewerPlanned) g_monitor.min_launched = Min(g_monitor.min_launched, launched);
        if (verdict == LaunchVerdict::kAcceptDegraded) g_monitor.degraded = true;
        const char *what = "";
        switch (verdict) {
            case LaunchVerdict::kTargetMet:
                what = seen == LaunchWatch::kFewerPlanned ? "all the pass asked for" : "target reached";
                break;
            case LaunchVerdict::kAcceptDegraded: what = "last attempt, minimum met: continuing degraded"; break;
            case LaunchVerdict::kAbandonAndRetry: what = "short of target: VACUUM cancelled, will retry"; break;
            case LaunchVerdict::kAbandonAndFail: what = "below minimum on the last attempt: VACUUM cancelled"; break;
        }
        SayProgress(psprintf("run %lld: attempt %d/%d: VACUUM index pass %d launched %d of %d planned workers "
                             "(target %d), %s",
                             static_cast<long long>(g_monitor.run_id), v.attempt, g_monitor.shown_max_attempts,
                             pass + 1, launched, v.planned[pass], v.options.target_workers, what),
                    verdict != LaunchVerdict::kTargetMet);
    }
    v.reported = passes;
    PublishLaunch(g_monitor.slot_index, g_monitor.run_id, g_monitor.min_planned == INT_MAX ? -1 : g_monitor.min_planned,
                  g_monitor.min_launched == INT_MAX ? -1 : g_monitor.min_launched);
}


/* The degree a VACUUM of the table will ask for, as PostgreSQL computes it; -1: no check. */
int PredictVacuumWorkers(Oid table_id, int requested, int *eligible) {
    *eligible = 0;
    /* Dropped since it was named: VACUUM says so itself; no check here. */
    Relation rel = try_relation_open(table_id, AccessShareLock);
    if (rel == nullptr) return INT_MAX;
    int workers = 0;
    if (rel->rd_rel->relpersistence != RELPERSISTENCE_TEMP) {
        List *indexes = RelationGetIndexList(rel);
        ListCell *lc;
        foreach (lc, indexes) {
            Relation index = try_relation_open(lfirst_oid(lc), AccessShareLock);
            if (index == nullptr) continue;   /* dropped concurrently */
            if (index->rd_rel->relkind == RELKIND_INDEX &&
                index->rd_indam->amparallelvacuumoptions != VACUUM_OPTION_NO_PARALLEL &&
                RelationGetNumberOfBlocks(index) >= static_cast<BlockNumber>(min_parallel_index_scan_size))
                (*eligible)++;
            relation_close(index, AccessShareLock);
        }
        /* The leader vacuums one index itself; parallel only with two indexes or more. */
        if (list_length(indexes) > 1 && *eligible > 1) {
            workers = *eligible - 1;
            if (requested > 0) workers = Min(workers, requested);
            workers = Min(workers, max_parallel_maintenance_workers);
        }
    }
    relation_close(rel, AccessShareLock);
    return workers;
}

/* Each named table's degree, before anything runs (its own transaction, locks released). */
void CheckVacuum(const char *sql) {
    auto *stmt = castNode(VacuumStmt, linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT))->stmt);
    int requested = 0;
    ListCell *lc;
    foreach (lc, stmt->options) {
        auto *opt = lfirst_node(DefElem, lc);
        if (strcmp(opt->defname, "parallel") == 0 && opt->arg != nullptr) requested = defGetInt32(opt);
    }
    int target = g_monitor.options.target_workers;
    foreach (lc, stmt->rels) {
        auto *vrel = lfirst_node(VacuumRelation, lc);
        Oid table_id = RangeVarGetRelid(vrel->relation, NoLock, true);
        /* VACUUM itself skips, with a warning, what it cannot find or may not vacuum. */
        if (!OidIsValid(table_id) || !MayMaintain(table_id, true)) continue;
        char kind = get_rel_relkind(table_id);
        if (kind != RELKIND_RELATION && kind != RELKIND_MATVIEW) continue;
        int eligible = 0;
        int planned = PredictVacuumWorkers(table_id, requested, &eligible);
        if (planned == INT_MAX) continue;
        g_monitor.min_planned = Min(g_monitor.min_planned, planned);
        if (planned >= target) continue;
        g_monitor.abandon = AttemptOutcome::kPlannedFewer;
        const char *table = get_rel_name(table_id);
        ereport(ERROR,
                (errcode(ERRCODE_PG_PLANNED_FEWER),
                 errmsg("VACUUM of table \"%s\" would launch at most %d of the %d parallel workers, so retrying "
                        "cannot help",
                        table, planned, target),
                 errdetail("VACUUM gives each index of at least min_parallel_index_scan_size to one process, the "
                           "leader included: the table has %d such index%s%s.",
                           eligible, eligible == 1 ? "" : "es",
                           requested > 0 && requested < target ? psprintf(", and PARALLEL asks for %d", requested)
                                                               : ""),
                 planned > 0 ? errhint("Lower target_workers to %d, or run the VACUUM directly.", planned)
                             : errhint("PostgreSQL vacuums the indexes of this table in one process: run the "
                                       "VACUUM directly.")));
    }
}

}  // namespace

void InstallVacuumHooks() {
    prev_emit_log_hook = emit_log_hook;
    emit_log_hook = PassReportHook;
}

void VacuumAttemptEnded() {
    if (!g_passes.on) return;
    bool cancelled = g_passes.cancelled;
    StopPassWatch();
    if (cancelled && g_monitor.abandon == AttemptOutcome::kNone) {
        int last = Min(g_passes.passes, kMaxPasses) - 1;
        g_monitor.abandon = OutcomeOfAbandon(static_cast<LaunchVerdict>(g_passes.judgement[Max(last, 0)]));
    }
}

void VacuumReportAfterAttempt() {
    ReportPasses();
}

bool VacuumPassesOf(int attempt, VacuumPasses *passes) {
    if (attempt <= 0 || g_passes.attempt != attempt) return false;
    passes->count = Min(g_passes.passes, kMaxPasses);
    passes->planned = g_passes.planned;
    passes->launched = g_passes.launched;
    return true;
}

uint64 RunVacuumAttempt(const char *sql) {
    BeginSpiTransaction(sql);
    CheckVacuum(sql);
    EndSpiStatement();
    CommitTransactionCommand();

    /* The run's reservation ends as the VACUUM starts: its passes' workers count in the pool. */
    PublishLaunch(g_monitor.slot_index, g_monitor.run_id,
                  g_monitor.min_planned == INT_MAX ? -1 : g_monitor.min_planned, -1);
    StartPassWatch();
    uint64 rows = RunAtTopLevel(sql);
    StopPassWatch();
    ReportPasses();
    return rows;
}

void VacuumAttemptAborted() {
    StopPassWatch();
    TopLevelAborted();
}

}  // namespace pgguarantee
