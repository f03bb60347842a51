/*
 * chunk_runner.cpp: a chunked run's coordinator and helpers (chunks.hpp): chunks taken from
 * the run's dispenser and run one transaction each, failures retried, skipped or fatal, the
 * helpers started and stopped, and the run accounted for at the end.
 */
#include "pg/history.hpp"
#include "pg/settings.hpp"
#include "pg/shmem/pool.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/spi_xact.hpp"
#include "pg/worker/chunks.hpp"

extern "C" {
#include "utils/lsyscache.h"
}

namespace pgguarantee {

namespace {

MemoryContext g_chunk_context = nullptr;   /* a chunk's error data; reset before each chunk */

/* The worker's chunk memory, made once. */
void EnsureChunkContext() {
    if (g_chunk_context == nullptr)
        g_chunk_context = AllocSetContextCreate(TopMemoryContext, "parallel_guarantee chunks", ALLOCSET_DEFAULT_SIZES);
}

BackgroundWorkerHandle *g_helpers[kMaxChunkWorkers];
int g_nhelpers = 0;

/* The action's plan, prepared as the run's role with its settings and kept for the life of the worker. */
SPIPlanPtr g_action_plan = nullptr;

/*
 * Waits until every helper has exited, first cancelling their current chunk if asked.
 * Interrupts are held meanwhile: a second cancel must not cut the wait short, or a helper
 * could still be working when a resume starts.
 */
void StopHelpers(RunShared *run, bool cancel) {
    HOLD_INTERRUPTS();
    bool signalled = false;
    for (int i = 0; i < g_nhelpers; i++) {
        for (;;) {
            /* A cancel that arrives while we wait reaches the helpers too. */
            if (!signalled && (cancel || RunCancelRequested(run))) {
                SignalRunHelpers(run->slot_index, run->run_id, SIGINT);
                signalled = true;
            }
            pid_t pid;
            if (GetBackgroundWorkerPid(g_helpers[i], &pid) == BGWH_STOPPED) break;
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
                             PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        }
    }
    g_nhelpers = 0;
    /* The cancel is known from the run's flag; the final accounting below must still run. */
    if (RunCancelRequested(run)) QueryCancelPending = false;
    RESUME_INTERRUPTS();
}


/* The chunk's keys as an array of the key type, for the action's $1, from their binary form. */
Datum TypedKeys(Datum binary_keys, Oid array_type) {
    Oid recv;
    Oid ioparam;
    getTypeBinaryInputInfo(array_type, &recv, &ioparam);
    bytea *bytes = DatumGetByteaPP(binary_keys);
    StringInfoData buf;
    initStringInfo(&buf);
    appendBinaryStringInfo(&buf, VARDATA_ANY(bytes), static_cast<int>(VARSIZE_ANY_EXHDR(bytes)));
    return OidReceiveFunctionCall(recv, &buf, ioparam, -1);
}

enum class ChunkOutcome { kCommitted, kNotPending, kRetry, kSkipped, kFailed, kStopped };

/*
 * Records a failed try of a chunk, in a transaction of its own (history.hpp); a chunk
 * skipped or failed for good is said in the server log, and a failed one stops the run's
 * other workers once the failure is committed.
 */
ChunkOutcome RecordFailure(RunShared *run, int chunk_no, ErrorData *edata) {
    int tries = 0;
    ChunkTry counted = ChunkHistoryCountFailure(run, chunk_no, edata, &tries);
    if (counted == ChunkTry::kSkipped || counted == ChunkTry::kFailed)
        ereport(LOG_SERVER_ONLY,
                (errmsg("parallel_guarantee: chunk run %lld: chunk %d %s after %d attempt%s: %s",
                        static_cast<long long>(run->run_id), chunk_no,
                        counted == ChunkTry::kSkipped ? "skipped" : "failed", tries, tries == 1 ? "" : "s",
                        edata->message),
                 errhidestmt(true), errhidecontext(true)));
    switch (counted) {
        case ChunkTry::kRetry: return ChunkOutcome::kRetry;
        case ChunkTry::kSkipped: return ChunkOutcome::kSkipped;
        case ChunkTry::kFailed:
            pg_atomic_write_u32(&run->chunk_run_failed, 1);
            return ChunkOutcome::kFailed;
        case ChunkTry::kNotPending: break;
    }
    return ChunkOutcome::kNotPending;
}

/*
 * Runs one chunk in one transaction: lock its row (only if still pending: a chunk done
 * by anyone, even a worker of an earlier run still finishing, is never run again; a row
 * another transaction holds is waited for), run the action, mark it done, commit.  The
 * chunk's work and its "done" commit together, so a crash can lose neither alone.  On an
 * error the transaction rolls back and a second one records the attempt.
 */
ChunkOutcome RunChunk(RunShared *run, const char *action, int worker, int chunk_no, uint64 *rows_out) {
    MemoryContext caller = CurrentMemoryContext;
    MemoryContext outer = g_chunk_context;
    volatile ChunkOutcome outcome = ChunkOutcome::kCommitted;
    PG_TRY();
    {
        BeginSpiTransaction(action);
        Datum binary;
        if (!ChunkHistoryLockPending(run, chunk_no, &binary)) {
            outcome = ChunkOutcome::kNotPending;
        } else {
            /* The chunks view shows it running from now until this transaction ends. */
            SetSlotChunk(run->slot_index, run->run_id, worker, chunk_no);
            Oid array_type = get_array_type(run->key_type);
            Datum keys = TypedKeys(binary, array_type);
            if (g_action_plan == nullptr) {
                SPIPlanPtr prepared = SPI_prepare(action, 1, &array_type);
                if (prepared == nullptr)
                    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                    errmsg("the action cannot run in a background worker (%s)",
                                           SPI_result_code_string(SPI_result))));
                if (SPI_keepplan(prepared) != 0)
                    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                    errmsg("parallel_guarantee: could not keep the action's plan")));
                g_action_plan = prepared;
            }
            int rc = SPI_execute_plan(g_action_plan, &keys, nullptr, false, 0);
            if (rc < 0)
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("the action cannot run in a background worker (%s)",
                                       SPI_result_code_string(rc))));
            uint64 rows = SPI_processed;
            ChunkHistoryMarkDone(run, chunk_no, rows);
            *rows_out = rows;
        }
        EndSpiStatement();
        CommitTransactionCommand();
        if (outcome == ChunkOutcome::kCommitted) SetSlotChunk(run->slot_index, run->run_id, worker, 0);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(g_chunk_context);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        SetSlotChunk(run->slot_index, run->run_id, worker, 0);
        QueryCancelPending = false;
        MemoryContextSwitchTo(outer);
        pgstat_report_activity(STATE_IDLE, nullptr);

        /*
         * Interrupted because the run is stopping (cancelled, or another chunk failed for
         * good): the chunk stays pending, its attempt not counted, for a resume.
         */
        bool stopping = RunCancelRequested(run) || pg_atomic_read_u32(&run->chunk_run_failed) != 0;
        if (stopping) {
            outcome = ChunkOutcome::kStopped;
        } else {
            outcome = RecordFailure(run, chunk_no, edata);
        }
        FreeErrorData(edata);
    }
    PG_END_TRY();
    MemoryContextSwitchTo(caller);
    pgstat_report_activity(STATE_IDLE, nullptr);
    return outcome;
}

/* A helper's coordinator is gone (a resume of the same run has a slot with the same id, but another coordinator). */
bool CoordinatorGone(RunShared *run) {
    RunSlot slot;
    int index;
    return !FindRun(run->run_id, &slot, &index) || index != run->slot_index ||
           slot.worker_pid != static_cast<int32>(pg_atomic_read_u32(&run->worker_pid));
}

/*
 * Takes chunks from the run's dispenser (each chunk number is handed to one worker of the
 * run) and runs them, a failing one again up to the retry limit, until none is left, the
 * run failed or it was cancelled.
 */
/* Chunks committed by all the run's workers when the coordinator last said so in a NOTICE. */
uint32 g_committed_when_said = 0;

int ProcessChunks(RunShared *run, const char *action, int worker, const int *only = nullptr, int nonly = 0) {
    bool coordinator = worker == 0;
    int processed = 0;
    int next_only = 0;
    while (!RunCancelRequested(run) && pg_atomic_read_u32(&run->chunk_run_failed) == 0) {
        if (ProcDiePending) CHECK_FOR_INTERRUPTS();
        /* A helper whose coordinator is gone stops: nobody would account for its work. */
        if (!coordinator && CoordinatorGone(run)) break;
        int chunk_no;
        if (only != nullptr) {
            if (next_only >= nonly) break;
            chunk_no = only[next_only++];
        } else {
            chunk_no = static_cast<int>(pg_atomic_fetch_add_u32(&run->next_chunk, 1)) + 1;
            if (chunk_no > run->chunks_total) break;
        }
        ChunkOutcome outcome;
        uint64 rows = 0;
        do {
            MemoryContextReset(g_chunk_context);
            outcome = RunChunk(run, action, worker, chunk_no, &rows);
        } while (outcome == ChunkOutcome::kRetry && !RunCancelRequested(run) &&
                 pg_atomic_read_u32(&run->chunk_run_failed) == 0);
        if (outcome != ChunkOutcome::kCommitted) continue;
        processed++;
        uint32 committed = pg_atomic_add_fetch_u32(&run->chunks_committed, 1);
        /* Only the coordinator can talk to the caller; it tells the progress of all workers. */
        uint32 every = static_cast<uint32>(Max(run->notice_every, 0));
        if (coordinator && every > 0 && committed / every > g_committed_when_said / every) {
            g_committed_when_said = committed;
            ereport(NOTICE, (errmsg("parallel_guarantee: chunk run %lld: %u of %d chunks done, "
                                    "latest chunk %d changed %llu rows",
                                    static_cast<long long>(run->run_id), committed, run->chunks_total,
                                    chunk_no, static_cast<unsigned long long>(rows)),
                             errhidecontext(true)));
        }
    }
    return processed;
}

/*
 * Helpers: the same segment, the same identity, chunks claimed one at a time.  At most
 * parallel_guarantee.max_chunk_helpers, and never the background-worker slots that a
 * parallel plan of the action (max_parallel_workers_per_gather of them) would need: a helper
 * that would leave fewer free is not started, and the caller is told.
 */
void StartHelpers(RunShared *run, dsm_segment *seg) {
    int wanted = Min(run->chunk_workers, kMaxChunkWorkers) - 1;
    int allowed = Min(wanted, g_max_chunk_helpers);
    int keep_free = Max(max_parallel_workers_per_gather, 0);
    bool short_of_slots = false;
    for (int i = 1; i <= allowed; i++) {
        WorkerPool pool = ReadWorkerPool();
        if (pool.total_slots - pool.used_slots - 1 < keep_free) {
            short_of_slots = true;
            break;
        }
        char name[BGW_MAXLEN];
        snprintf(name, sizeof name, "parallel_guarantee chunk helper %d of run %lld", i,
                 static_cast<long long>(run->run_id));
        if (!RegisterRunWorker(seg, name, i, &g_helpers[g_nhelpers])) {
            short_of_slots = true;
            break;
        }
        g_nhelpers++;
    }
    if (g_nhelpers < wanted) {
        if (g_nhelpers < allowed || short_of_slots)
            ereport(NOTICE, (errmsg("parallel_guarantee: chunk run %lld runs with %d of %d workers: no more "
                                    "background worker slots were free beyond the %d kept for parallel queries",
                                    static_cast<long long>(run->run_id), g_nhelpers + 1, run->chunk_workers,
                                    keep_free),
                             errhint("Raise max_worker_processes (this needs a restart), or ask for fewer workers.")));
        else
            ereport(NOTICE, (errmsg("parallel_guarantee: chunk run %lld runs with %d of %d workers: "
                                    "parallel_guarantee.max_chunk_helpers allows %d helpers",
                                    static_cast<long long>(run->run_id), g_nhelpers + 1, run->chunk_workers,
                                    g_max_chunk_helpers),
                             errhint("A superuser can raise parallel_guarantee.max_chunk_helpers.")));
    }
}

/*
 * Accounts for a chunked run from its chunk rows once its workers are done: the result for
 * the caller, and the run's final status (failed: with its first failed chunk's error, raised
 * for the caller too; cancelled: chunks still pending; else done).
 */
void AccountForRun(RunShared *run) {
    ChunkTally tally = ChunkHistoryTally(run);
    int64 rows = tally.rows;
    int done = tally.done, skipped = tally.skipped, failed = tally.failed, pending = tally.pending;
    run->chunks_total = tally.total;
    run->rows = static_cast<uint64>(rows);
    run->chunks_done = done;
    run->chunks_skipped = skipped;
    if (failed > 0) {
        run->chunk_status = ChunkStatus::kFailed;
        /* The first failed chunk's own error, for the history and the caller. */
        ChunkFailure first = ChunkHistoryFirstFailure(run);
        char *chunk_no = first.chunk_no;
        char *attempts = first.attempts;
        char *sqlstate = first.sqlstate;
        char *error = first.error;
        char *message = psprintf("chunk %s failed after %s attempt%s: %s", chunk_no, attempts,
                                 strcmp(attempts, "1") == 0 ? "" : "s", error);
        ChunkHistorySetStatus(run, "failed", sqlstate, message);
        ereport(ERROR,
                (errcode(MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4])),
                 errmsg("chunked run %lld stopped: %s", static_cast<long long>(run->run_id), message),
                 errdetail("%d chunks committed (%lld rows), %d skipped, %d not run; committed chunks "
                           "stay committed.",
                           done, static_cast<long long>(rows), skipped, pending + failed - 1),
                 errhint("Fix the cause, then continue with SELECT * FROM parallel_guarantee.resume_chunks(%lld); chunks "
                         "already done are not run again.",
                         static_cast<long long>(run->run_id))));
    } else if (pending > 0) {
        run->chunk_status = ChunkStatus::kCancelled;
        ChunkHistorySetStatus(run, "cancelled", unpack_sql_state(ERRCODE_QUERY_CANCELED), "the run was cancelled; resume it with resume_chunks");
    } else {
        run->chunk_status = ChunkStatus::kDone;
        ChunkHistorySetStatus(run, "done", nullptr, nullptr);
    }
}

}  // namespace

void ChunkCoordinatorMain(RunShared *run, dsm_segment *seg, const char *keys_query,
                          const char *action_text, const char *label) {
    ChunkHistoryOpen(run);
    EnsureChunkContext();
    const char *volatile action = action_text;   /* reassigned inside PG_TRY for a resume */
    volatile bool owns_status = false;           /* the run's row is ours to update */
    MemoryContext outer = CurrentMemoryContext;
    char *resume_action = nullptr;

    PG_TRY();
    {
        if (run->mode == RunMode::kChunksResume) {
            ChunkHistoryLoadResume(run, &resume_action);
            /* Progress counts the chunks done before this resume too. */
            ChunkTally before = ChunkHistoryTally(run);
            pg_atomic_write_u32(&run->chunks_committed, static_cast<uint32>(before.done));
            g_committed_when_said = static_cast<uint32>(before.done);
            SetCurrentRoleId(run->outer_user_id, run->role_is_superuser);
            SetUserIdAndSecContext(run->current_user_id, run->sec_context);
            owns_status = true;
            pg_atomic_write_u32(&run->recorded, 1);
            action = resume_action;
        } else {
            /* Record the run first, so that a keys query that fails is in the history too. */
            ChunkHistoryRecordRun(run, keys_query, const_cast<const char *>(action), label);
            owns_status = true;
            /* A submitting caller may return now: the run is in the history. */
            pg_atomic_write_u32(&run->recorded, 1);
            CreateChunks(run, keys_query);
        }

        /*
         * Helpers only now: the keys query may use the background-worker slots for its own
         * parallel workers, and a resume's helpers take the run's own role, which
         * PrepareResume read.
         */
        StartHelpers(run, seg);

        (void) ProcessChunks(run, const_cast<const char *>(action), 0);
        /* A failed run lets the helpers finish their current chunk; a cancelled one stops them. */
        StopHelpers(run, RunCancelRequested(run));
        /*
         * A helper stopped on its chunk (terminated, say) left it pending: with the helpers
         * gone, the coordinator does what is still pending, so the run is not short of it.
         */
        if (!RunCancelRequested(run) && pg_atomic_read_u32(&run->chunk_run_failed) == 0) {
            int *pending_chunks = nullptr;
            int npending = ChunkHistoryPending(run, &pending_chunks);
            if (npending > 0) {
                ereport(LOG_SERVER_ONLY,
                        (errmsg("parallel_guarantee: chunk run %lld: %d chunk%s left pending by a stopped "
                                "helper, done by the coordinator",
                                static_cast<long long>(run->run_id), npending, npending == 1 ? "" : "s"),
                         errhidestmt(true), errhidecontext(true)));
                (void) ProcessChunks(run, const_cast<const char *>(action), 0, pending_chunks, npending);
            }
            pfree(pending_chunks);
        }
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(outer);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        if (IsTransactionState()) AbortCurrentTransaction();
        QueryCancelPending = false;
        /* Never leave a helper working on a run whose coordinator gave up. */
        pg_atomic_write_u32(&run->chunk_run_failed, 1);
        StopHelpers(run, true);
        /* A resume that could not start leaves the run as it was. */
        if (owns_status)
            ChunkHistorySetStatus(run, RunCancelRequested(run) ? "cancelled" : "error",
                         unpack_sql_state(edata->sqlerrcode), edata->message);
        ReThrowError(edata);
    }
    PG_END_TRY();

    AccountForRun(run);
}

void ChunkHelperMain(RunShared *run, const char *action, int helper) {
    EnsureChunkContext();
    ChunkHistoryOpen(run);
    if (run->mode == RunMode::kChunksResume) {
        /* The coordinator loaded the action; helpers read it from the run's row. */
        action = ChunkHistoryAction(run);
        if (action == nullptr) return;
    }
    (void) ProcessChunks(run, action, helper);
}

}  // namespace pgguarantee
