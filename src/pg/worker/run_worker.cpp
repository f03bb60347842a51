/*
 * worker.cpp: the dynamic background worker that runs a guaranteed statement.
 *
 * It attaches to the run's DSM segment, sends every message (NOTICE, ERROR) to the caller
 * through the segment's message queue, connects as the caller with the caller's settings,
 * and runs the attempts: each in its own transaction, watched by the monitor (monitor.hpp),
 * abandoned and cleaned up when short, committed when the target (or, on the last attempt,
 * the minimum) is met.  SIGINT (the caller stopping) cancels the statement; the cleanup
 * still runs.  SIGTERM (server shutdown, pg_terminate_backend) ends the worker at once and
 * its transaction rolls back.
 */
#include "pg/worker/caller_session.hpp"
#include "pg/worker/chunks.hpp"
#include "pg/compat.hpp"
#include "pg/errors.hpp"
#include "pg/history.hpp"
#include "pg/worker/maintenance.hpp"
#include "pg/worker/vacuum.hpp"
#include "pg/worker/monitor.hpp"
#include "pg/shmem/pool.hpp"
#include "pg/settings.hpp"
#include "pg/spi_xact.hpp"
#include "pg/shmem/run_segment.hpp"
#include "pg/shmem/run_slots.hpp"

#include <climits>

extern "C" {
PGDLLEXPORT void parallel_guarantee_worker_main(Datum main_arg);
}

namespace pgguarantee {

bool g_in_guarantee_worker = false;

namespace {

RunShared *g_run = nullptr;
/* The attempt in progress (0: none), for a worker terminated in the middle of it. */
int g_attempt_now = 0;
TimestampTz g_attempt_started = 0;
int64 g_attempt_waited_ms = 0;
bool g_end_recorded = false;   /* HistoryFinish has recorded the run's end */

/*
 * How often a queued run looks at the pool: the first in the queue every 2 ms, so it sees a
 * freed slot at once; the others, which cannot start before it anyway, every 20 ms.
 */
constexpr long kQueuePollMs = 2;
constexpr long kQueuePollBehindMs = 20;
const char *g_statement = nullptr;
const char *g_cleanup = nullptr;
MemoryContext g_run_context = nullptr;

/* What one attempt came to. */
struct AttemptResult {
    AttemptOutcome outcome;
    uint64 rows;
    ErrorData *error;   /* in g_run_context; for statement errors and cancellations */
};

bool CancelRequested() {
    return RunCancelRequested(g_run);
}

int64 MicrosSince(TimestampTz start) {
    return GetCurrentTimestamp() - start;
}

dsm_segment *g_seg = nullptr;

/* A helper that exits (its work done, or stopped on a chunk) leaves its chunk and the slot. */
void HelperExits(int, Datum helper_number) {
    SetSlotChunk(g_run->slot_index, g_run->run_id, DatumGetInt32(helper_number), 0);
    SetSlotHelper(g_run->slot_index, g_run->run_id, DatumGetInt32(helper_number), 0);
}

void ReleaseOnExit(int, Datum) {
    ReleaseSlot(g_run->slot_index, g_run->run_id);
    /* A submitted run's segment was pinned for us: let it go with this process. */
    if (g_run->async && g_seg != nullptr) dsm_unpin_segment(dsm_segment_handle(g_seg));
}

/* Runs the statement once, in its own transaction, watched by the monitor. */
AttemptResult RunOneAttempt(int attempt, const RunOptions &attempt_options) {
    AttemptResult result{AttemptOutcome::kNone, 0, nullptr};
    volatile uint64 rows = 0;
    volatile bool ok = false;
    volatile bool committing = false;
    MemoryContext outer = CurrentMemoryContext;

    MonitorBegin(g_run->run_id, g_run->slot_index, attempt, attempt_options, g_run->options.max_attempts,
                 g_run->force_workers,
                 g_run->kind);
    g_run->phase_at[kPhaseStatementStarted] = GetCurrentTimestamp();
    g_run->phase_at[kPhaseLaunched] = 0;
    PG_TRY();
    {
        if (g_run->kind == StatementKind::kVacuum) {
            /* VACUUM commits as it goes: at the top level, outside any transaction of ours. */
            rows = RunVacuumAttempt(g_statement);
            g_run->phase_at[kPhaseLaunched] = g_monitor.first_launch_at;
            MonitorEnd();
            ok = true;
        } else if (g_run->kind == StatementKind::kConcurrentBuild) {
            /* Commits as it goes too; an abandoned build leaves an INVALID index for the cleanup. */
            rows = RunConcurrentBuildAttempt(g_statement);
            g_run->phase_at[kPhaseLaunched] = g_monitor.first_launch_at;
            MonitorEnd();
            ok = true;
        } else {
        BeginSpiTransaction(g_statement);
        if (g_run->kind == StatementKind::kMaintenance) MaintenanceBeforeStatement(g_statement);
        SPIExecuteOptions options;
        memset(&options, 0, sizeof options);
        options.read_only = false;
        options.tcount = 0;   /* no row limit: a row-limited run is never parallel */
        options.dest = None_Receiver;
        int rc = SPI_execute_extended(g_statement, &options);
        if (rc < 0)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("the statement cannot run in a background worker (%s)",
                                   SPI_result_code_string(rc))));
        rows = SPI_processed;
        EndSpiStatement();
        g_run->phase_at[kPhaseLaunched] = g_monitor.first_launch_at;
        MonitorCheckBeforeCommit();
        /* From here a cancel is too late: a cancel that came first rolls the statement back. */
        if (pg_atomic_read_u32(&g_run->cancel_requested) != 0 ||
            !SlotEnterCommit(g_run->slot_index, g_run->run_id))
            ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                            errmsg("canceling statement due to user request")));
        committing = true;
        MonitorEnd();
        CommitTransactionCommand();
        ok = true;
        }
    }
    PG_CATCH();
    {
        MonitorEnd();
        MemoryContextSwitchTo(g_run_context);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        if (g_run->kind == StatementKind::kVacuum) VacuumAttemptAborted();
        if (g_run->kind == StatementKind::kConcurrentBuild) TopLevelAborted();
        if (committing) SlotLeaveCommit(g_run->slot_index, g_run->run_id);
        /* A cancel that arrived while we were already abandoning must not hit the cleanup. */
        QueryCancelPending = false;
        result.error = edata;
        if (g_monitor.abandon != AttemptOutcome::kNone)
            result.outcome = g_monitor.abandon;
        else if (CancelRequested())
            result.outcome = AttemptOutcome::kCancelled;
        else
            result.outcome = AttemptOutcome::kStatementError;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(outer);
    pgstat_report_activity(STATE_IDLE, nullptr);
    /* An index build's launch that the attempt's end came before saying. */
    MaintenanceReportAfterAttempt();
    if (g_run->kind == StatementKind::kVacuum) VacuumReportAfterAttempt();

    if (ok) {
        result.rows = rows;
        result.outcome = g_monitor.degraded ? AttemptOutcome::kDegraded : AttemptOutcome::kTargetMet;
    }
    return result;
}

/* Runs the cleanup statement in its own transaction; an error says it came from cleanup. */
void RunCleanup(int attempt) {
    if (!g_run->has_cleanup) return;
    SetSlotState(g_run->slot_index, g_run->run_id, SlotState::kCleaningUp, attempt);
    MemoryContext outer = CurrentMemoryContext;
    PG_TRY();
    {
        BeginSpiTransaction(g_cleanup);
        /* "table does not exist, skipping" after every abandoned attempt is noise. */
        (void) set_config_option("client_min_messages", "warning", PGC_USERSET, PGC_S_SESSION,
                                 GUC_ACTION_LOCAL, true, 0, false);
        int rc = SPI_execute(g_cleanup, false, 0);
        if (rc < 0)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("the cleanup statement cannot run in a background worker (%s)",
                                   SPI_result_code_string(rc))));
        EndSpiStatement();
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(g_run_context);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        MemoryContextSwitchTo(outer);
        pgstat_report_activity(STATE_IDLE, nullptr);
        ereport(ERROR,
                (errcode(edata->sqlerrcode),
                 errmsg("cleanup statement failed after attempt %d: %s", attempt, edata->message),
                 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
                 errhint("The run stopped: fix the cleanup statement. What the statement may "
                         "have left behind was not cleaned up.")));
    }
    PG_END_TRY();
    MemoryContextSwitchTo(outer);
    pgstat_report_activity(STATE_IDLE, nullptr);
}

/*
 * Waits for the retry delay, waking for the caller's cancel.  Returns false when the run
 * was cancelled meanwhile.
 */
bool WaitRetryDelay(int attempt) {
    if (g_run->options.retry_delay_ms <= 0) return !CancelRequested();
    SetSlotState(g_run->slot_index, g_run->run_id, SlotState::kWaitingRetry, attempt);
    TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), g_run->options.retry_delay_ms);
    for (;;) {
        if (ProcDiePending) CHECK_FOR_INTERRUPTS();
        if (QueryCancelPending || CancelRequested()) {
            QueryCancelPending = false;
            return false;
        }
        long remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);
        if (remaining <= 0) return true;
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, remaining,
                         RunWaitEvent(RunWait::kRetryDelay));
        ResetLatch(MyLatch);
    }
}

enum class WaitResult { kReady, kDeadline, kCancelled };

bool g_warmed = false;

/*
 * Used once, the first time a run has to wait: plans the statement with EXPLAIN (nothing
 * runs), so that this fresh process has read the catalogs and statistics it needs and, with
 * jit on, started its JIT compiler before the slots free up.  The attempt then starts as
 * fast as a warm session would.  Best effort: an error (EXPLAIN cannot take REFRESH
 * MATERIALIZED VIEW, say) is dropped, and the attempt reports it if it is real.
 */
void WarmUp(TimestampTz deadline) {
    g_warmed = true;
    if (g_run->kind != StatementKind::kQuery && g_run->kind != StatementKind::kModifying) return;
    MemoryContext outer = CurrentMemoryContext;
    PG_TRY();
    {
        BeginSpiTransaction(nullptr);
        /* A lock the plan waits for must not keep the run past its deadline. */
        long left = Max(1L, Min(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline),
                                static_cast<long>(INT_MAX)));
        if (LockTimeout == 0 || LockTimeout > left) {
            char value[32];
            snprintf(value, sizeof value, "%ld", left);
            (void) set_config_option("lock_timeout", value, PGC_USERSET, PGC_S_SESSION,
                                     GUC_ACTION_LOCAL, true, 0, false);
        }
        (void) SPI_execute(psprintf("EXPLAIN (COSTS OFF) %s", g_statement), false, 0);
        EndSpiStatement();
        /* Nothing planning did (a function folded to a constant, say) is kept. */
        AbortCurrentTransaction();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(outer);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        ereport(DEBUG1, (errmsg("parallel_guarantee: run %lld: warming up while waiting failed: %s",
                                static_cast<long long>(g_run->run_id), edata->message)));
        /* A cancel that arrived meanwhile is the wait's to act on. */
        if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED) QueryCancelPending = true;
        FreeErrorData(edata);
    }
    PG_END_TRY();
    MemoryContextSwitchTo(outer);
}

/*
 * Waits in the queue until the run is first and its workers look free, up to the deadline.
 * A run whose target the pool could never hold at once (this session's
 * max_parallel_workers is below it, say) does not wait: its attempts go as they go.
 */
WaitResult WaitForSlots(int attempt, TimestampTz deadline, int64 *waited_ms) {
    int need = g_run->options.target_workers;
    WorkerPool pool = ReadWorkerPool();
    *waited_ms = 0;
    /* Background workers that stay: all but parallel workers and our runs' workers, plus this one. */
    int staying = OtherBackgroundWorkers(pool) + 1;
    if (need > max_parallel_workers || need > pool.total_slots - staying) return WaitResult::kReady;

    QueueEnter(g_run->slot_index, g_run->run_id, need, g_run->priority);
    SetSlotState(g_run->slot_index, g_run->run_id, SlotState::kWaitingForSlots, attempt);
    TimestampTz start = GetCurrentTimestamp();
    bool said = false;
    for (;;) {
        if (ProcDiePending) CHECK_FOR_INTERRUPTS();
        if (QueryCancelPending || CancelRequested()) {
            QueryCancelPending = false;
            QueueLeave(g_run->slot_index, g_run->run_id);
            return WaitResult::kCancelled;
        }
        int position = 0, free_workers = 0;
        bool admitted = QueueTryAdmit(g_run->slot_index, g_run->run_id, need, max_parallel_workers,
                                      &position, &free_workers);
        TimestampTz now = GetCurrentTimestamp();
        *waited_ms = (now - start) / 1000;
        if (admitted) {
            if (said) {
                char *message = CoreText([&] { return AdmittedMessage(g_run->run_id, attempt, need,
                                                           static_cast<double>(now - start) / 1000.0); });
                SayProgress(message);
            }
            return WaitResult::kReady;
        }
        if (!said) {
            char *message = CoreText([&] { return WaitingMessage(g_run->run_id, attempt, need, free_workers, position); });
            SayProgress(message);
            said = true;
        }
        if (!g_warmed) {
            WarmUp(deadline);
            continue;   /* look again at once: the slots may have freed meanwhile */
        }
        if (now >= deadline) {
            QueueLeave(g_run->slot_index, g_run->run_id);
            char *message = CoreText([&] {
                return DeadlineMessage(g_run->run_id, attempt, g_run->options.max_attempts,
                                       static_cast<double>(now - start) / 1000.0, g_run->max_wait_ms);
            });
            SayProgress(message, true);
            return WaitResult::kDeadline;
        }
        long remaining = TimestampDifferenceMilliseconds(now, deadline);
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                         Max(1L, Min(position == 1 ? kQueuePollMs : kQueuePollBehindMs, remaining)),
                         RunWaitEvent(RunWait::kQueue));
        ResetLatch(MyLatch);
    }
}

void RecordAttempt(int attempt, const AttemptResult &r, int64 waited_ms, TimestampTz started) {
    AttemptRecord &rec = g_run->attempts[attempt - 1];
    rec.outcome = r.outcome;
    rec.planned = g_monitor.min_planned == INT_MAX ? -1 : g_monitor.min_planned;
    rec.launched = g_monitor.min_launched == INT_MAX ? -1 : g_monitor.min_launched;
    rec.waited_ms = waited_ms;
    rec.duration_us = MicrosSince(started);
    g_run->attempts_used = attempt;
    g_run->planned = rec.planned;
    g_run->launched = rec.launched;
}

/* Re-raises a statement's own error as the caller should see it. */
void ReThrowStatementError(ErrorData *edata) {
    edata->elevel = ERROR;
    ReThrowError(edata);
}

/* max_wait ended the wait for free workers, which made an attempt the last. */
bool g_wait_ended_run = false;

void RaiseInsufficient(const RunOptions &o) {
    char *detail = CoreText([&] { return DescribeAttempts(g_run->attempts, g_run->attempts_used, o.target_workers); });
    int launched = g_run->launched < 0 ? 0 : g_run->launched;
    ereport(ERROR,
            (errcode(ERRCODE_PG_INSUFFICIENT_WORKERS),
             errmsg("launched %d of %d parallel workers, below min_workers %d, after %d attempt%s",
                    launched, o.target_workers, o.min_workers, g_run->attempts_used,
                    g_run->attempts_used == 1 ? "" : "s"),
             errdetail_internal("%s", detail),
             max_parallel_workers < o.target_workers
                 ? errhint("This session's max_parallel_workers (%d) is below target_workers (%d), "
                           "and the run inherits it: RESET max_parallel_workers before the call.",
                           max_parallel_workers, o.target_workers)
             : g_wait_ended_run
                 ? errhint("The run waited its max_wait (%lld ms) for free workers, which other sessions "
                           "held (see pg_stat_activity, backend_type 'parallel worker'); that made attempt %d "
                           "of %d the last. Allow a longer max_wait (a nightly job: as long as its window "
                           "allows), lower min_workers, or raise max_parallel_workers.",
                           static_cast<long long>(g_run->max_wait_ms), g_run->attempts_used,
                           g_run->options.max_attempts)
                 : errhint("Other sessions held the parallel worker slots (see pg_stat_activity, "
                     "backend_type 'parallel worker'). Retry later, allow more attempts or a "
                     "longer retry_delay, lower min_workers, or raise max_parallel_workers.")));
}

/*
 * The run's outcome is decided: from here a cancel is too late (it answers false).  A
 * cancel that came first wins, and the run ends cancelled: nothing of it was committed.
 * (A successful attempt settles just before its commit, in RunOneAttempt.)
 */
void SettleOrCancel() {
    if (pg_atomic_read_u32(&g_run->cancel_requested) != 0 ||
        !SlotEnterCommit(g_run->slot_index, g_run->run_id))
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                        errmsg("canceling guaranteed run %lld", static_cast<long long>(g_run->run_id))));
}

/* Is this statement error one retry_sqlstates lists? */
bool RetriedError(const ErrorData *error) {
    if (error == nullptr) return false;
    for (int i = 0; i < g_run->n_retry_sqlstates; i++)
        if (g_run->retry_sqlstates[i] == error->sqlerrcode) return true;
    return false;
}

/* The attempt loop. */
void RunAttempts() {
    /*
     * o says how the attempts are judged; the NOTICEs keep counting against the caller's
     * max_attempts (g_run->options).  max_wait reached makes the attempt about to start the
     * last one judged: its minimum decides, and the error says max_wait ended the run.
     */
    RunOptions o = g_run->options;
    TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), g_run->max_wait_ms);
    /*
     * The caller's own max_parallel_workers, which the run inherits, cannot change during the
     * run: below the target, no retry could do better.  One attempt, judged as the last.
     */
    if (max_parallel_workers < o.target_workers && o.max_attempts > 1) {
        o.max_attempts = 1;
        char *message = psprintf("run %lld: this session's max_parallel_workers (%d) is below target_workers "
                                 "(%d) and cannot change during the run: one attempt, judged against "
                                 "min_workers (%d)",
                                 static_cast<long long>(g_run->run_id), max_parallel_workers,
                                 o.target_workers, o.min_workers);
        SayProgress(message, true);
    }
    for (int attempt = 1; attempt <= o.max_attempts; attempt++) {
        int64 waited_ms = 0;
        if (g_run->wait_for_slots) {
            WaitResult waited = WaitForSlots(attempt, deadline, &waited_ms);
            if (waited == WaitResult::kCancelled)
                ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                                errmsg("canceling guaranteed run %lld while it waited for workers",
                                       static_cast<long long>(g_run->run_id))));
            if (waited == WaitResult::kDeadline) {
                o.max_attempts = attempt;
                g_wait_ended_run = true;
            }
        } else if (attempt > 1) {
            TimestampTz wait_start = GetCurrentTimestamp();
            bool go_on = WaitRetryDelay(attempt);
            waited_ms = MicrosSince(wait_start) / 1000;
            if (!go_on)
                ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                                errmsg("canceling guaranteed run %lld before attempt %d",
                                       static_cast<long long>(g_run->run_id), attempt)));
        }
        if (CancelRequested())
            ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                            errmsg("canceling guaranteed run %lld", static_cast<long long>(g_run->run_id))));

        SetSlotState(g_run->slot_index, g_run->run_id, SlotState::kRunning, attempt);
        /* The first attempt's launch line says it all: a run that meets its target says one line. */
        if (attempt > 1) {
            char *started_msg = CoreText([&] { return AttemptStartedMessage(g_run->run_id, attempt, g_run->options); });
            SayProgress(started_msg);
        }

        TimestampTz started = GetCurrentTimestamp();
        g_attempt_now = attempt;
        g_attempt_started = started;
        g_attempt_waited_ms = waited_ms;
        AttemptResult r = RunOneAttempt(attempt, o);
        if (r.outcome == AttemptOutcome::kStatementError && attempt < o.max_attempts && RetriedError(r.error))
            r.outcome = AttemptOutcome::kErrorRetried;
        RecordAttempt(attempt, r, waited_ms, started);
        g_attempt_now = 0;
        HistoryAttempt(g_run, attempt, started,
                       r.outcome != AttemptOutcome::kAbandoned && r.outcome != AttemptOutcome::kErrorRetried);

        switch (r.outcome) {
            case AttemptOutcome::kTargetMet:
            case AttemptOutcome::kDegraded:
                g_run->rows = r.rows;
                g_run->status = r.outcome == AttemptOutcome::kTargetMet ? RunStatus::kTargetMet
                                                                        : RunStatus::kDegraded;
                return;
            case AttemptOutcome::kAbandoned:
                RunCleanup(attempt);
                continue;
            case AttemptOutcome::kErrorRetried: {
                char *message = psprintf("run %lld: attempt %d/%d failed with SQLSTATE %s (%s), which "
                                         "retry_sqlstates lists: cleanup, then a new attempt after retry_delay",
                                         static_cast<long long>(g_run->run_id), attempt, g_run->options.max_attempts,
                                         unpack_sql_state(r.error->sqlerrcode), r.error->message);
                SayProgress(message, true);
                RunCleanup(attempt);
                /* Without the queue the next attempt waits retry_delay itself; with it, wait here. */
                if (g_run->wait_for_slots && !WaitRetryDelay(attempt + 1))
                    ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                                    errmsg("canceling guaranteed run %lld before attempt %d",
                                           static_cast<long long>(g_run->run_id), attempt + 1)));
                continue;
            }
            case AttemptOutcome::kFailedShort:
                RunCleanup(attempt);
                SettleOrCancel();
                g_run->status = RunStatus::kFailed;
                if (g_run->raise_on_failure) RaiseInsufficient(o);
                return;
            default:
                /* Statement error, cancellation, planned fewer, no parallel plan: no retry. */
                RunCleanup(attempt);
                if (r.outcome != AttemptOutcome::kCancelled) SettleOrCancel();
                ReThrowStatementError(r.error);
        }
    }
    /* Not reached: the last attempt either succeeds, degrades or fails above. */
    g_run->status = RunStatus::kFailed;
}

/*
 * A worker terminated (SIGTERM: pg_terminate_backend, a server shutdown) exits through
 * FATAL without recording the run's end: this callback, run before the backend's own
 * shutdown, rolls the attempt's transaction back and records what is known.
 */
void RecordTerminationOnExit(int code, Datum) {
    if (code == 0 || g_end_recorded) return;
    AbortOutOfAnyTransaction();
    int attempt = g_attempt_now;
    if (attempt > 0 && attempt <= kMaxAttempts) {
        AttemptRecord &rec = g_run->attempts[attempt - 1];
        rec.outcome = AttemptOutcome::kTerminated;
        rec.planned = g_monitor.min_planned == INT_MAX ? -1 : g_monitor.min_planned;
        rec.launched = g_monitor.min_launched == INT_MAX ? -1 : g_monitor.min_launched;
        rec.waited_ms = g_attempt_waited_ms;
        rec.duration_us = MicrosSince(g_attempt_started);
        g_run->attempts_used = attempt;
    }
    HistoryTerminated(g_run, attempt, g_attempt_started);
}

/* A guaranteed run: recorded, its attempts, and how it ended, recorded too. */
void RunGuarantee(const char *label) {
    /* Let the planner plan the target degree; force_workers also removes the cost barrier. */
    char target[16];
    snprintf(target, sizeof target, "%d", g_run->options.target_workers);
    (void) set_config_option("max_parallel_workers_per_gather", target, PGC_USERSET,
                             PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
    /* An index build plans up to max_parallel_maintenance_workers: the target, for this command only. */
    if (g_run->kind == StatementKind::kMaintenance || g_run->kind == StatementKind::kVacuum ||
        g_run->kind == StatementKind::kConcurrentBuild)
        (void) set_config_option("max_parallel_maintenance_workers", target, PGC_USERSET, PGC_S_SESSION,
                                 GUC_ACTION_SET, true, 0, false);
    if (g_run->force_workers) {
        const char *zero_settings[] = {"parallel_setup_cost", "parallel_tuple_cost",
                                       "min_parallel_table_scan_size", "min_parallel_index_scan_size"};
        for (const char *name : zero_settings)
            (void) set_config_option(name, "0", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0,
                                     false);
    }

    /* A cancel that came before we started is handled in the attempts, once the run is recorded. */
    HistoryBegin(g_run, g_statement, g_run->has_cleanup ? g_cleanup : nullptr, label);
    g_run->phase_at[kPhaseRecorded] = GetCurrentTimestamp();
    pg_atomic_write_u32(&g_run->recorded, 1);
    before_shmem_exit(RecordTerminationOnExit, 0);
    MemoryContext outer = CurrentMemoryContext;
    PG_TRY();
    {
        RunAttempts();
    }
    PG_CATCH();
    {
        /* Record how the run ended, then let the error go to the caller (and the log). */
        MemoryContextSwitchTo(g_run_context);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        if (IsTransactionState()) AbortCurrentTransaction();
        QueryCancelPending = false;
        MemoryContextSwitchTo(outer);
        const char *status = "error";
        if (edata->sqlerrcode == ERRCODE_PG_INSUFFICIENT_WORKERS)
            status = "failed";
        else if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && CancelRequested())
            status = "cancelled";
        HistoryFinish(g_run, status, unpack_sql_state(edata->sqlerrcode), edata->message);
        g_end_recorded = true;
        ReThrowError(edata);
    }
    PG_END_TRY();
    g_run->phase_at[kPhaseStatementDone] = GetCurrentTimestamp();
    SetSlotState(g_run->slot_index, g_run->run_id, SlotState::kFinishing, g_run->attempts_used);
    HistoryFinish(g_run, StatusName(g_run->status), nullptr, nullptr);
    g_run->phase_at[kPhaseEndRecorded] = GetCurrentTimestamp();
    g_end_recorded = true;
}

void WorkerMain(Datum main_arg) {
    pqsignal(SIGTERM, die);
    pqsignal(SIGINT, StatementCancelHandler);
    BackgroundWorkerUnblockSignals();

    TimestampTz started = GetCurrentTimestamp();
    CurrentResourceOwner = ResourceOwnerCreate(nullptr, "parallel_guarantee worker");
    RunSegment segment = AttachRunSegment(DatumGetUInt32(main_arg));
    g_run = segment.run;
    g_seg = segment.seg;
    /* A chunk helper shares the coordinator's run: no message queue, no slot of its own. */
    int helper_number = static_cast<unsigned char>(MyBgworkerEntry->bgw_extra[0]);
    bool helper = helper_number > 0;
    if (!helper) g_run->phase_at[kPhaseWorkerStarted] = started;
    if (!g_run->async && !helper) {
        /* NOTICEs and the error go to the caller, who waits for them. */
        shm_mq_set_sender(segment.queue, MyProc);
        shm_mq_handle *mqh = shm_mq_attach(segment.queue, segment.seg, nullptr);
        pq_redirect_to_shm_mq(segment.seg, mqh);
    }
    if (!helper) {
        before_shmem_exit(ReleaseOnExit, 0);
        pg_atomic_write_u32(&g_run->worker_pid, static_cast<uint32>(MyProcPid));
        SetSlotWorker(g_run->slot_index, g_run->run_id, MyProcPid);
    } else {
        /* A helper that is stopped on a chunk (terminated, say) is no longer on it. */
        before_shmem_exit(HelperExits, Int32GetDatum(helper_number));
        SetSlotHelper(g_run->slot_index, g_run->run_id, helper_number, MyProcPid);
    }
    const char *label = g_run->has_label ? segment.label : nullptr;
    g_run_context = AllocSetContextCreate(TopMemoryContext, "parallel_guarantee run", ALLOCSET_DEFAULT_SIZES);
    g_statement = segment.statement;
    g_cleanup = segment.cleanup;
    g_in_guarantee_worker = true;
    BecomeTheCaller(g_run, segment);
    if (!helper) g_run->phase_at[kPhaseConnected] = GetCurrentTimestamp();

    if (g_run->mode == RunMode::kGuarantee) {
        RunGuarantee(label);
    } else if (helper) {
        ChunkHelperMain(g_run, g_cleanup, helper_number);
    } else {
        SetSlotState(g_run->slot_index, g_run->run_id, SlotState::kRunning, 1);
        ChunkCoordinatorMain(g_run, segment.seg, g_statement, g_cleanup, label);
        SetSlotState(g_run->slot_index, g_run->run_id, SlotState::kFinishing, 1);
    }
}

}  // namespace
}  // namespace pgguarantee

void parallel_guarantee_worker_main(Datum main_arg) {
    pgguarantee::CatchingCall([&]() { pgguarantee::WorkerMain(main_arg); });
}
