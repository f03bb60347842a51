/*
 * control.cpp: acting on a run in progress: waiting for it and cancelling it.  Only the
 * run's role, its members and superusers may; to anyone else a run they may not see does not
 * exist.
 */
#include "pg/api/control.hpp"

#include "pg/api/arguments.hpp"
#include "pg/api/launch.hpp"
#include "pg/api/views.hpp"
#include "pg/shmem/run_slots.hpp"

namespace pgguarantee {

namespace {

void CheckMayActOn(const RunSlot &slot, const char *what) {
    /* A run the caller may not even see is, to the caller, no run at all. */
    if (!CanSee(slot.user_id))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("there is no run %lld that you may see",
                               static_cast<long long>(slot.run_id))));
    if (!has_privs_of_role(GetUserId(), slot.user_id)) {
        char *role = GetUserNameFromId(slot.user_id, true);
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to %s run %lld", what,
                               static_cast<long long>(slot.run_id)),
                        errdetail("The run belongs to role \"%s\".", role ? role : "?"),
                        errhint("Only that role, its members and superusers may %s it.", what)));
    }
}

/* How long a too-late cancel waits for the run to record its end. */
constexpr int kTooLateWaitMs = 10000;

/*
 * A run in progress in another database cannot be waited on from here: its outcome is
 * recorded in that database's history, which this session cannot read.  Refused, naming
 * that database.
 */
void RejectRunOfAnotherDatabase(int64 run_id, const char *what) {
    RunSlot other;
    if (!FindRunInOtherDatabase(run_id, &other) || !CanSee(other.user_id)) return;
    char *database = get_database_name(other.database_id);
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("run %lld is in progress in database \"%s\", not in this one",
                           static_cast<long long>(run_id), database ? database : "?"),
                    errdetail("A run's outcome is recorded in its own database."),
                    errhint("Connect to database \"%s\" to %s it.", database ? database : "?", what)));
}

}  // namespace

/* parallel_guarantee_wait_for: true once the run is no longer in progress, false on timeout. */
Datum WaitFor(FunctionCallInfo fcinfo) {
    RequirePreloaded();
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("run_id must not be NULL")));
    int64 run_id = PG_GETARG_INT64(0);
    int64 timeout_ms = -1;
    if (!PG_ARGISNULL(1)) {
        timeout_ms = IntervalToMillis(PG_GETARG_INTERVAL_P(1));
        if (timeout_ms < 0)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("timeout must not be negative")));
    }
    RunSlot slot;
    int index;
    if (!FindRun(run_id, &slot, &index)) {
        RejectRunOfAnotherDatabase(run_id, "wait on");
        PG_RETURN_BOOL(true);
    }
    CheckMayActOn(slot, "wait on");
    TimestampTz deadline = timeout_ms >= 0 ? TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms)
                                           : DT_NOEND;
    TimestampTz next_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kSelfDeadlockCheckMs);
    SelfDeadlockWatch watch;
    for (;;) {
        if (!FindRun(run_id, &slot, &index)) PG_RETURN_BOOL(true);
        TimestampTz now = GetCurrentTimestamp();
        if (now >= deadline) PG_RETURN_BOOL(false);
        if (now >= next_check) {
            /* Waiting on a run whose statement waits for our own lock would never end. */
            if (watch.Deadlocked(slot.worker_pid))
                ereport(ERROR, (errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
                                errmsg("run %lld waits for a lock that this transaction holds, so "
                                       "waiting for it would never end",
                                       static_cast<long long>(run_id)),
                                errhint("Commit or roll back first, then wait for the run.")));
            next_check = TimestampTzPlusMilliseconds(now, kSelfDeadlockCheckMs);
        }
        long sleep_ms = 10;
        if (deadline != DT_NOEND) sleep_ms = Max(1L, Min(sleep_ms, TimestampDifferenceMilliseconds(now, deadline)));
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

/*
 * parallel_guarantee_cancel_run: true if the run was in progress and is now asked to stop.
 * A run already committing its statement cannot be stopped: we wait until it has recorded
 * how it ended, so that the caller reads its final status, and answer false.
 */
Datum CancelRun(FunctionCallInfo fcinfo) {
    RequirePreloaded();
    int64 run_id = PG_GETARG_INT64(0);
    RunSlot slot;
    int index;
    /*
     * Run ids are unique in the cluster since 1.0, so a run in progress in another database
     * is cancelled too (a DBA acts on what the activity view shows); this database's run comes
     * first for an id given out before 1.0, when ids were numbered per database.
     */
    if (!FindRun(run_id, &slot, &index) && !FindRunInOtherDatabase(run_id, &slot)) PG_RETURN_BOOL(false);
    CheckMayActOn(slot, "cancel");
    Oid database_id = slot.database_id;
    CancelAnswer answer = RequestCancel(run_id, database_id);
    if (answer == CancelAnswer::kTooLate && slot.worker_pid != MyProcPid) {
        /*
         * Bounded: a commit can wait for a synchronous standby, or for a lock our own
         * transaction holds (a deferred trigger), and we must not wait for it forever.
         */
        TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kTooLateWaitMs);
        while (FindRunIn(database_id, run_id, &slot, &index)) {
            if (GetCurrentTimestamp() >= until) {
                ereport(NOTICE, (errmsg("run %lld is committing its statement: too late to cancel it",
                                        static_cast<long long>(run_id))));
                break;
            }
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 5,
                             PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
        }
    }
    PG_RETURN_BOOL(answer == CancelAnswer::kRequested);
}

}  // namespace pgguarantee
