/*
 * views.cpp: what parallel_guarantee_activity, _queue, _chunks and the run views read from
 * shared memory, and the visibility rule they all follow: a run is visible to its role, the
 * members of that role, and pg_read_all_stats.
 */
#include "pg/api/views.hpp"

#include "pg/history.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/spi_xact.hpp"

extern "C" {
#include "utils/tuplestore.h"
}

namespace pgguarantee {

namespace {

/*
 * Sets up a set-returning function's result as a tuplestore (the caller puts its rows in
 * it) and copies the run slots, taken under the lock in one go; *n is 0 without shared
 * memory.
 */
RunSlot *BeginSlotScan(FunctionCallInfo fcinfo, const char *function, Tuplestorestate **store,
                       TupleDesc *tupdesc, int *n) {
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    if (rsinfo == nullptr || !IsA(rsinfo, ReturnSetInfo) ||
        (rsinfo->allowedModes & SFRM_Materialize) == 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("%s must be called in FROM", function)));
    if (get_call_result_type(fcinfo, nullptr, tupdesc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("return type must be a row type")));
    MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
    *store = tuplestore_begin_heap(true, false, work_mem);
    rsinfo->returnMode = SFRM_Materialize;
    rsinfo->setResult = *store;
    rsinfo->setDesc = CreateTupleDescCopy(*tupdesc);
    MemoryContextSwitchTo(old);
    RunSlot *copy = nullptr;
    *n = CopyRunSlots(&copy);
    return copy;
}

}  // namespace

/* May the current user see this run?  Its own role (or a member), or pg_read_all_stats. */
bool CanSee(Oid run_user) {
    return has_privs_of_role(GetUserId(), run_user) ||
           has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

Datum Activity(FunctionCallInfo fcinfo) {
    Tuplestorestate *store;
    TupleDesc tupdesc;
    int n;
    RunSlot *copy = BeginSlotScan(fcinfo, "parallel_guarantee_activity", &store, &tupdesc, &n);
    for (int i = 0; i < n; i++) {
        RunSlot *s = &copy[i];
        if (s->run_id == 0 || !CanSee(s->user_id)) continue;
        Datum values[18];
        bool nulls[18] = {};
        values[0] = Int64GetDatum(s->run_id);
        values[1] = Int32GetDatum(s->caller_pid);
        values[2] = Int32GetDatum(s->worker_pid);
        nulls[2] = s->worker_pid == 0;
        values[3] = ObjectIdGetDatum(s->database_id);
        values[4] = ObjectIdGetDatum(s->user_id);
        values[5] = CStringGetTextDatum(SlotStateName(s->state));
        values[6] = Int32GetDatum(s->attempt);
        values[7] = Int32GetDatum(s->max_attempts);
        values[8] = Int32GetDatum(s->target_workers);
        values[9] = Int32GetDatum(s->min_workers);
        values[10] = Int32GetDatum(s->planned);
        nulls[10] = s->planned < 0;
        values[11] = Int32GetDatum(s->launched);
        nulls[11] = s->launched < 0;
        values[12] = TimestampTzGetDatum(s->started_at);
        values[13] = TimestampTzGetDatum(s->state_since);
        int position = s->waiting ? QueuePosition(copy, n, i) : 0;
        values[14] = Int32GetDatum(position);
        nulls[14] = position == 0;
        values[15] = Int32GetDatum(s->priority);
        values[16] = CStringGetTextDatum(s->label);
        nulls[16] = s->label[0] == '\0';
        /* The kind: a column since 0.5.1 (an older SQL definition has 17). */
        values[17] = CStringGetTextDatum(s->chunked ? "chunked" : "guaranteed");
        tuplestore_putvalues(store, tupdesc, values, nulls);
    }
    return (Datum) 0;
}

/*
 * True if a run the caller may see is recorded as running but no worker has it any more
 * (killed, server restarted): lost.  The run's row is read again under a new snapshot
 * (READ COMMITTED): a worker records its run's end before it lets go of the run, so a run
 * that ended after the caller's snapshot is not called lost.  Under REPEATABLE READ and
 * SERIALIZABLE the row cannot change within the transaction, and the answer is false.
 */
Datum RunLost(FunctionCallInfo fcinfo) {
    int64 run_id = PG_GETARG_INT64(0);
    bool chunked = PG_GETARG_BOOL(1);
    /*
     * Without the preloaded library there are no slots to ask; on a standby the slots are
     * empty while the primary runs: neither can tell a lost run.
     */
    if (!RunSlotsReady() || RecoveryInProgress() || IsolationUsesXactSnapshot()) PG_RETURN_BOOL(false);
    /* Declared PARALLEL UNSAFE; called anyway in parallel mode, it cannot take a new snapshot. */
    if (IsInParallelMode()) PG_RETURN_BOOL(false);
    RunSlot running;
    int index;
    if (FindRun(run_id, &running, &index)) PG_RETURN_BOOL(false);
    bool missing;
    RunRow row = LookUpRunRow(get_func_namespace(fcinfo->flinfo->fn_oid), chunked, run_id, &missing);
    /* The answer, like the run, only for those who may see it. */
    PG_RETURN_BOOL(row.found && row.running && CanSee(row.role));
}

/*
 * The chunks the workers of chunked runs in this database are on, for the runs the caller
 * may see (the same rule as parallel_guarantee_activity).
 */
Datum RunningChunks(FunctionCallInfo fcinfo) {
    Tuplestorestate *store;
    TupleDesc tupdesc;
    int n;
    RunSlot *copy = BeginSlotScan(fcinfo, "parallel_guarantee_running_chunks", &store, &tupdesc, &n);
    for (int i = 0; i < n; i++) {
        const RunSlot *s = &copy[i];
        if (s->run_id == 0 || s->database_id != MyDatabaseId || !CanSee(s->user_id)) continue;
        for (int w = 0; w < kMaxChunkWorkers; w++) {
            if (s->chunk_no[w] == 0) continue;
            Datum values[4] = {Int64GetDatum(s->run_id), Int32GetDatum(s->chunk_no[w]),
                               Int32GetDatum(s->chunk_pid[w]), TimestampTzGetDatum(s->chunk_since[w])};
            bool nulls[4] = {false, false, false, false};
            tuplestore_putvalues(store, tupdesc, values, nulls);
        }
    }
    return (Datum) 0;
}

}  // namespace pgguarantee
