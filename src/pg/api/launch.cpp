/*
 * launch.cpp: see launch.hpp.
 */
#include "pg/api/launch.hpp"

#include "pg/api/views.hpp"
#include "pg/history.hpp"
#include "pg/settings.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/spi_xact.hpp"

namespace pgguarantee {

namespace {

/* What the detach callback needs when the caller stops waiting. */
BackgroundWorkerHandle *g_handle = nullptr;
/*
 * The worker of this session's last synchronous run, which may still be exiting: the call
 * returned as soon as the worker had delivered its result and left its run slot, without
 * waiting for the postmaster to reap it (2-8 ms).  Its background-worker slot is freed only
 * then, so the session's next run waits for it first.
 */
BackgroundWorkerHandle *g_exiting = nullptr;

void WaitForExitingWorker() {
    if (g_exiting == nullptr) return;
    (void) WaitForBackgroundWorkerShutdown(g_exiting);
    pfree(g_exiting);
    g_exiting = nullptr;
}

/*
 * Stops a run nobody will wait for: its worker is asked to cancel (it records the run as
 * cancelled, runs the cleanup and exits).  pinned: a submitted run's segment, which stays
 * for a worker that has started but is not in its slot yet (it will see the flag before its
 * first attempt); a waited-for run's segment goes away with its caller, so such a worker
 * could never run: it is stopped and its slot freed here, as is the slot of a worker not
 * started yet (which never runs anything) or already gone.
 */
void StopRun(RunShared *run, dsm_segment *pinned) {
    pg_atomic_write_u32(&run->cancel_requested, 1);
    pg_memory_barrier();
    if (SignalRunWorker(run->slot_index, run->run_id, SIGINT) || pg_atomic_read_u32(&run->worker_pid) != 0) return;
    pid_t pid;
    BgwHandleStatus status = g_handle != nullptr ? GetBackgroundWorkerPid(g_handle, &pid) : BGWH_STOPPED;
    if (status == BGWH_STARTED && pinned != nullptr) return;
    if (status == BGWH_STARTED || status == BGWH_NOT_YET_STARTED) TerminateBackgroundWorker(g_handle);
    if (status == BGWH_NOT_YET_STARTED && pinned != nullptr) dsm_unpin_segment(dsm_segment_handle(pinned));
    ReleaseSlot(run->slot_index, run->run_id);
}

/* The caller stopped waiting (cancel, timeout, termination): the run stops too. */
void CallerDetached(dsm_segment *, Datum arg) {
    auto *run = reinterpret_cast<RunShared *>(DatumGetPointer(arg));
    if (!run->caller_finished) StopRun(run, nullptr);
}

/* A copy of a parsed worker message, strings and all, in memory context cxt. */
ErrorData *CopyWorkerError(const ErrorData *from, MemoryContext cxt) {
    MemoryContext old = MemoryContextSwitchTo(cxt);
    auto *to = static_cast<ErrorData *>(palloc(sizeof(ErrorData)));
    *to = *from;
    auto copy = [](const char *text) { return text ? pstrdup(text) : nullptr; };
    to->filename = copy(from->filename);
    to->funcname = copy(from->funcname);
    to->message = copy(from->message);
    to->detail = copy(from->detail);
    to->detail_log = copy(from->detail_log);
    to->hint = copy(from->hint);
    to->context = copy(from->context);
    to->backtrace = copy(from->backtrace);
    to->schema_name = copy(from->schema_name);
    to->table_name = copy(from->table_name);
    to->column_name = copy(from->column_name);
    to->datatype_name = copy(from->datatype_name);
    to->constraint_name = copy(from->constraint_name);
    to->internalquery = copy(from->internalquery);
    to->assoc_context = cxt;
    MemoryContextSwitchTo(old);
    return to;
}

/*
 * Relays one message from the worker: notices at once, the error kept for later.  The
 * message is parsed in `relay`, which the caller resets after each message, so relaying
 * any number of notices takes no more memory than one; the kept error is copied out to
 * the current context.
 */
void HandleWorkerMessage(void *data, Size nbytes, MemoryContext relay, ErrorData **error) {
    MemoryContext outer = MemoryContextSwitchTo(relay);
    StringInfoData msg;
    initStringInfo(&msg);
    appendBinaryStringInfo(&msg, static_cast<const char *>(data), static_cast<int>(nbytes));
    char msgtype = static_cast<char>(pq_getmsgbyte(&msg));
    ErrorData *edata = nullptr;
    if (msgtype == 'E' || msgtype == 'N') {   /* notifications, parameter status: ignored */
        edata = static_cast<ErrorData *>(palloc0(sizeof(ErrorData)));
        pq_parse_errornotice(&msg, edata);
    }
    /* Back in the caller's context before anything is reported (a report may longjmp). */
    MemoryContextSwitchTo(outer);
    if (edata == nullptr) return;
    if (msgtype == 'N' || edata->elevel < ERROR) {
        ThrowErrorData(edata);   /* copies what it reports into ErrorContext */
        return;
    }
    if (*error == nullptr) *error = CopyWorkerError(edata, outer);
}

/* Waits until the run's worker has started; an error if the server is shutting down. */
void WaitForStartup(int slot, int64 run_id, RunShared *run, dsm_segment *seg, bool async) {
    pid_t pid;
    BgwHandleStatus status = WaitForBackgroundWorkerStartup(g_handle, &pid);
    if (status != BGWH_STARTED && status != BGWH_STOPPED) {
        run->caller_finished = true;
        ReleaseSlot(slot, run_id);
        if (async) dsm_unpin_segment(dsm_segment_handle(seg));
        ereport(ERROR, (errcode(ERRCODE_ADMIN_SHUTDOWN),
                        errmsg("could not start a background worker: the server is shutting down")));
    }
}

/* A submitting call failed before returning the run id: stop the run it started. */
void StopUnseenRun(RunShared *run, dsm_segment *seg) {
    run->caller_finished = true;
    StopRun(run, seg);
}

/*
 * A submitting call returns once the run is in the history, so that
 * parallel_guarantee_status() finds it at once; the worker records it right after
 * connecting.  If this call fails meanwhile (cancelled, statement_timeout), its caller never
 * learns the run id: the run is stopped as a synchronous caller's would be, not left to go on
 * unseen.
 */
void WaitUntilRecorded(int slot, int64 run_id, RunShared *run, dsm_segment *seg) {
    PG_TRY();
    {
        WaitForStartup(slot, run_id, run, seg, true);
        for (;;) {
            if (pg_atomic_read_u32(&run->recorded) != 0) break;
            pid_t ignored;
            if (GetBackgroundWorkerPid(g_handle, &ignored) == BGWH_STOPPED) break;
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1,
                             PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
        }
    }
    PG_CATCH();
    {
        if (!run->caller_finished) StopUnseenRun(run, seg);
        PG_RE_THROW();
    }
    PG_END_TRY();
    /* A run the worker could not record (see the server log) never started. */
    if (pg_atomic_read_u32(&run->recorded) == 0) {
        run->caller_finished = true;
        pfree(g_handle);
        g_handle = nullptr;
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("submitted run %lld stopped before it was recorded, so it did not run",
                               static_cast<long long>(run_id)),
                        errhint("The server log says why (look for run %lld).", static_cast<long long>(run_id))));
    }
    /* The worker owns the segment now (it unpins it); the run goes on without us. */
    run->caller_finished = true;
    pfree(g_handle);
    g_handle = nullptr;
}

/* The run as the worker must see it: the caller's identity, and the request. */
void DescribeRun(RunShared *run, int64 run_id, int slot, const RunRequest &r, Oid extension_namespace,
                 bool async) {
    run->run_id = run_id;
    run->slot_index = slot;
    run->caller_pid = MyProcPid;
    run->database_id = MyDatabaseId;
    run->authenticated_user_id = GetAuthenticatedUserId();
    run->outer_user_id = GetCurrentRoleId();
    run->role_is_superuser = superuser_arg(OidIsValid(run->outer_user_id) ? run->outer_user_id
                                                                          : GetSessionUserId());
    GetUserIdAndSecContext(&run->current_user_id, &run->sec_context);
    run->options = r.options;
    run->force_workers = r.force_workers;
    run->raise_on_failure = r.raise_on_failure;
    run->wait_for_slots = r.wait_for_slots;
    run->max_wait_ms = r.max_wait_ms;
    run->priority = r.priority;
    run->n_retry_sqlstates = r.n_retry_sqlstates;
    for (int i = 0; i < r.n_retry_sqlstates; i++) run->retry_sqlstates[i] = r.retry_sqlstates[i];
    run->has_cleanup = r.cleanup != nullptr;
    run->has_label = r.label != nullptr;
    run->async = async;
    run->extension_namespace = extension_namespace;
    run->kind = r.kind;
    run->mode = r.mode;
    run->chunk_size = r.chunk_size;
    run->max_retries = r.max_retries;
    run->max_skipped = r.max_skipped;
    run->chunk_workers = r.chunk_workers;
    run->notice_every = r.notice_every;
    run->resume_role = r.resume_role;
    run->status = RunStatus::kRunning;
    run->planned = -1;
    run->launched = -1;
}

Launched LaunchWorker(int64 run_id, int slot, const RunRequest &r, Oid extension_namespace,
                      bool async) {
    RunSegment segment = CreateRunSegment(r.statement, r.cleanup ? r.cleanup : "", r.label ? r.label : "");
    dsm_segment *seg = segment.seg;
    RunShared *run = segment.run;
    shm_mq *mq = segment.queue;
    DescribeRun(run, run_id, slot, r, extension_namespace, async);
    if (async) {
        /* Nobody waits: the segment outlives this session; the worker unpins it. */
        dsm_pin_segment(seg);
    } else {
        shm_mq_set_receiver(mq, MyProc);
        /* From here on, the caller stopping for any reason stops the worker. */
        on_dsm_detach(seg, CallerDetached, PointerGetDatum(run));
    }

    char name[BGW_MAXLEN];
    snprintf(name, sizeof name, "parallel_guarantee run %lld for PID %d", static_cast<long long>(run_id),
             MyProcPid);
    bool registered = RegisterRunWorker(seg, name, 0, &g_handle);
    /*
     * A slot held by another session's worker that has just delivered its run (the
     * postmaster frees it a few ms later) is worth a short wait: up to 100 ms.
     */
    for (int tries = 0; !registered && tries < 20; tries++) {
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 5, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        registered = RegisterRunWorker(seg, name, 0, &g_handle);
    }
    if (!registered) {
        g_handle = nullptr;
        ReleaseSlot(slot, run_id);
        run->caller_finished = true;
        if (async) dsm_unpin_segment(dsm_segment_handle(seg));
        ereport(ERROR,
                (errcode(ERRCODE_PG_NO_RUN_SLOT),
                 errmsg("could not start a background worker for the guaranteed run"),
                 errdetail("All %d max_worker_processes slots are in use.", max_worker_processes),
                 errhint("Wait for other background workers to finish, or raise "
                         "max_worker_processes (this needs a server restart).")));
    }

    if (async) {
        WaitUntilRecorded(slot, run_id, run, seg);
        return Launched{seg, run, nullptr};
    }
    WaitForStartup(slot, run_id, run, seg, async);
    shm_mq_handle *mqh = shm_mq_attach(mq, seg, g_handle);
    return Launched{seg, run, mqh};
}

/* Waits for the worker, relaying its messages; returns its error if it sent one. */
ErrorData *WaitForWorker(shm_mq_handle *mqh, RunShared *run) {
    ErrorData *error = nullptr;
    SelfDeadlockWatch watch;
    /*
     * Each message is parsed here and the context reset after it.  A child of the current
     * context, so an error that leaves this loop early frees it with its parent.
     */
    MemoryContext relay = AllocSetContextCreate(CurrentMemoryContext, "parallel_guarantee relay",
                                                ALLOCSET_DEFAULT_SIZES);
    for (;;) {
        Size nbytes = 0;
        void *data = nullptr;
        shm_mq_result res = shm_mq_receive(mqh, &nbytes, &data, true);
        if (res == SHM_MQ_SUCCESS) {
            HandleWorkerMessage(data, nbytes, relay, &error);
            MemoryContextReset(relay);
            continue;
        }
        if (res == SHM_MQ_DETACHED) break;
        int events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                               kSelfDeadlockCheckMs, RunWaitEvent(RunWait::kCaller));
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if ((events & WL_TIMEOUT) != 0) {
            if (watch.Deadlocked(static_cast<pid_t>(pg_atomic_read_u32(&run->worker_pid))))
                ereport(ERROR,
                        (errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
                         errmsg("the guaranteed statement waits for a lock that the calling "
                                "transaction holds"),
                         errdetail("The statement runs in a background worker, in a transaction "
                                   "of its own, so it waits for the caller, which waits for it."),
                         errhint("Commit the locking statement before the call, or make the "
                                 "call outside the transaction block.")));
        }
    }
    MemoryContextDelete(relay);
    return error;
}

/*
 * resume_chunks: the role of the run to resume, once the caller is known to be allowed to
 * resume it (the run's role, a member of it, a superuser), before any slot is taken: a role
 * that may not resume a run gets 42501 and never holds the run's id in a slot.
 */
Oid CheckMayResume(Oid namespace_oid, int64 run_id, RunRow *done_row) {
    bool missing;
    RunRow row = LookUpRunRow(namespace_oid, true, run_id, &missing);
    if (missing)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the chunk tables of parallel_guarantee are missing"),
                        errhint("Update the extension: ALTER EXTENSION parallel_guarantee UPDATE;")));
    Oid role = row.found ? row.role : InvalidOid;
    bool done = row.done;
    if (!OidIsValid(role) || !CanSee(role))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("there is no chunked run %lld to resume", static_cast<long long>(run_id)),
                        errhint("Run ids come from run_in_chunks and submit_chunks; a run is visible to its "
                                "role, that role's members and pg_read_all_stats.")));
    if (!has_privs_of_role(GetUserId(), role)) {
        char *name = GetUserNameFromId(role, true);
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to resume chunked run %lld", static_cast<long long>(run_id)),
                        errdetail("The run belongs to role \"%s\".", name ? name : "?"),
                        errhint("Only the run's role, its members and superusers may resume it.")));
    }
    if (done) {
        if (done_row != nullptr) {
            *done_row = row;
            return role;
        }
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("chunked run %lld is already done", static_cast<long long>(run_id))));
    }
    return role;
}

}  // namespace

/*
 * True if the worker waits for a heavyweight lock that this session holds in a conflicting
 * mode: the caller waits for the worker, the worker for the caller's transaction, and the
 * deadlock detector cannot see it (they are not one lock group).  The worker's wait is
 * read without its partition lock; a stale read can only miss, and the caller acts only
 * when two checks in a row agree.
 */
bool WorkerWaitsForMe(pid_t pid) {
    if (pid == 0) return false;
    PGPROC *proc = BackendPidGetProc(pid);
    if (proc == nullptr) return false;
    LOCK *lock = proc->waitLock;
    if (lock == nullptr) return false;
    LOCKTAG tag = lock->tag;
    LOCKMODE wanted = proc->waitLockMode;
    if (tag.locktag_lockmethodid != DEFAULT_LOCKMETHOD || wanted <= 0 || wanted > MaxLockMode)
        return false;
    LockMethod method = GetLocksMethodTable(lock);
    for (LOCKMODE held = 1; held <= MaxLockMode; held++)
        if ((method->conflictTab[wanted] & LOCKBIT_ON(held)) && LockHeldByMeExactly(&tag, held)) return true;
    return false;
}

/*
 * A new run id, unique in the cluster (AssignRunId).  The database's sequence is raised to it
 * when another database's runs took the ids between, so that the sequence stays the floor of
 * this database's ids through pg_dump and pg_upgrade, which do not carry the cluster's
 * counter.  The sequence belongs to the extension's owner: it is set as that owner.
 */
static int64 NewRunId(Oid sequence) {
    int64 from_sequence = nextval_internal(sequence, false);
    int64 run_id = AssignRunId(from_sequence);
    if (run_id > from_sequence) {
        HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(sequence));
        if (!HeapTupleIsValid(tuple))
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                            errmsg("the sequence parallel_guarantee_run_id_seq is missing")));
        Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
        ReleaseSysCache(tuple);
        Oid saved_user;
        int saved_context;
        GetUserIdAndSecContext(&saved_user, &saved_context);
        SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
        PG_TRY();
        {
            (void) DirectFunctionCall3(setval3_oid, ObjectIdGetDatum(sequence), Int64GetDatum(run_id),
                                       BoolGetDatum(true));
        }
        PG_FINALLY();
        {
            SetUserIdAndSecContext(saved_user, saved_context);
        }
        PG_END_TRY();
    }
    return run_id;
}

bool ResumeOfDoneRun(FunctionCallInfo fcinfo, int64 run_id, RunRow *row) {
    row->done = false;
    (void) CheckMayResume(get_func_namespace(fcinfo->flinfo->fn_oid), run_id, row);
    return row->done;
}

/* Takes a run id and a run slot, and starts the worker. */
Launched StartRun(FunctionCallInfo fcinfo, RunRequest &r, bool async, int64 *run_id_out) {
    WaitForExitingWorker();
    Oid namespace_oid = get_func_namespace(fcinfo->flinfo->fn_oid);
    Oid sequence = get_relname_relid("parallel_guarantee_run_id_seq", namespace_oid);
    if (!OidIsValid(sequence))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("the sequence parallel_guarantee_run_id_seq is missing"),
                        errhint("Reinstall the extension: DROP EXTENSION parallel_guarantee; "
                                "CREATE EXTENSION parallel_guarantee;")));
    /* A resumed run belongs to the run's role; only those who may act for it get this far. */
    Oid run_role = r.mode == RunMode::kChunksResume ? CheckMayResume(namespace_oid, r.resume_run_id, nullptr) : GetUserId();
    r.resume_role = run_role;
    int64 run_id = r.mode == RunMode::kChunksResume ? r.resume_run_id : NewRunId(sequence);
    if (r.mode == RunMode::kChunksResume) {
        RunSlot running;
        int index;
        if (FindRun(run_id, &running, &index))
            ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
                            errmsg("chunked run %lld is still in progress", static_cast<long long>(run_id)),
                            errhint("Wait for it, or cancel it with parallel_guarantee.parallel_guarantee_cancel(%lld).",
                                    static_cast<long long>(run_id))));
    }

    int slot = AllocateSlot(run_id, MyDatabaseId, run_role, r.options, r.label, async, r.mode != RunMode::kGuarantee);
    if (slot == kTooManyAsync)
        ereport(ERROR, (errcode(ERRCODE_PG_NO_RUN_SLOT),
                        errmsg("%d submitted runs are in progress, the most parallel_guarantee.max_async_runs allows",
                               g_max_async_runs),
                        errhint("Wait for a submitted run to finish, or raise "
                                "parallel_guarantee.max_async_runs.")));
    if (slot == kTooManyForRole || slot == kTooManyAsyncForRole) {
        char *role = GetUserNameFromId(run_role, true);
        bool any = slot == kTooManyForRole;
        ereport(ERROR, (errcode(ERRCODE_PG_ROLE_LIMIT),
                        errmsg("role \"%s\" already has %d %sruns in progress, the most "
                               "parallel_guarantee.%s allows",
                               role ? role : "?", any ? g_max_runs_per_role : g_max_async_runs_per_role,
                               any ? "" : "submitted ", any ? "max_runs_per_role" : "max_async_runs_per_role"),
                        errdetail("Each role gets a share of the run slots, so that no role can take them all."),
                        errhint("Wait for one of the role's runs to finish, or ask the DBA to raise "
                                "parallel_guarantee.%s.",
                                any ? "max_runs_per_role" : "max_async_runs_per_role")));
    }
    if (slot < 0)
        ereport(ERROR, (errcode(ERRCODE_PG_NO_RUN_SLOT),
                        errmsg("all %d run slots of parallel_guarantee are in use", MaxRuns()),
                        errhint("Wait for other guaranteed runs to finish, or raise "
                                "parallel_guarantee.max_runs (this needs a server restart).")));
    *run_id_out = run_id;
    /*
     * Whatever fails before the worker is registered (no dynamic shared memory, out of
     * memory) gives the slot back: a slot left "starting" would never be freed.
     */
    if (g_handle != nullptr) {
        pfree(g_handle);
        g_handle = nullptr;
    }
    Launched launched{};
    PG_TRY();
    {
        launched = LaunchWorker(run_id, slot, r, namespace_oid, async);
    }
    PG_CATCH();
    {
        if (g_handle == nullptr) ReleaseSlot(slot, run_id);
        PG_RE_THROW();
    }
    PG_END_TRY();
    return launched;
}

/*
 * Waits for the worker of a synchronous run and re-raises its error, if any, with a
 * context line naming it.  On return the worker has exited and the caller still has the
 * segment mapped (detach it after reading the result).
 */
RunShared *AwaitWorker(const Launched &launched, int64 run_id, const char *worker_name) {
    ErrorData *error = WaitForWorker(launched.mqh, launched.run);
    launched.run->phase_at[kPhaseResultReceived] = GetCurrentTimestamp();
    /*
     * The worker's queue detached as it exits, after it had recorded the run, left its run
     * slot and its pg_stat_activity entry: its result is final.  The postmaster reaps it a
     * few ms later; the session's next run waits for that (WaitForExitingWorker).
     */
    RunShared *run = launched.run;
    run->phase_at[kPhaseReturned] = GetCurrentTimestamp();
    run->caller_finished = true;
    g_exiting = g_handle;
    g_handle = nullptr;
    if (error != nullptr) {
        dsm_detach(launched.seg);
        error->elevel = ERROR;
        const char *where = psprintf("%s, run %lld", worker_name, static_cast<long long>(run_id));
        error->context = error->context ? psprintf("%s\n%s", error->context, where) : pstrdup(where);
        ThrowErrorData(error);
    }
    return run;
}

}  // namespace pgguarantee
