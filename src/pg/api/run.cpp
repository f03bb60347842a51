/*
 * run.cpp: the functions that start runs: run_with_parallel_guarantee and
 * submit_parallel_guarantee, run_in_chunks, submit_chunks and resume_chunks.
 */
#include "pg/api/run.hpp"

#include "pg/api/arguments.hpp"
#include "pg/api/launch.hpp"
#include "pg/api/submitted.hpp"
#include "pg/settings.hpp"

namespace pgguarantee {

namespace {

/* The caller's result row type, checked to be the 7 columns this library fills. */
TupleDesc ResultRowType(FunctionCallInfo fcinfo, const char *function) {
    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE || tupdesc->natts != 7)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s must return its 7-column result row", function),
                        errhint("Update the extension: ALTER EXTENSION parallel_guarantee UPDATE;")));
    return BlessTupleDesc(tupdesc);
}

/*
 * The result row, its columns found by name: 0.x's parallel_guarantee_result had run_id last,
 * 1.0's has it first, and a database not yet updated still has the old type while the server
 * runs the new library.  values/nulls/types are in the order of names.
 */
Datum FormResult(TupleDesc tupdesc, const char *const names[7], const Oid types[7], const Datum values[7],
                 const bool nulls[7]) {
    Datum ordered[7];
    bool ordered_nulls[7];
    for (int i = 0; i < 7; i++) {
        Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
        int from = -1;
        for (int j = 0; j < 7 && from < 0; j++)
            if (strcmp(NameStr(attr->attname), names[j]) == 0) from = j;
        if (from < 0 || attr->atttypid != types[from])
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("the result type's column \"%s\" is not what this version of "
                                   "parallel_guarantee returns",
                                   NameStr(attr->attname)),
                            errhint("Update the extension: ALTER EXTENSION parallel_guarantee UPDATE;")));
        ordered[i] = values[from];
        ordered_nulls[i] = nulls[from];
    }
    return HeapTupleGetDatum(heap_form_tuple(tupdesc, ordered, ordered_nulls));
}

const char *const kResultColumns[7] = {"run_id", "status", "rows", "workers_planned", "workers_launched",
                                       "attempts", "elapsed"};
const Oid kResultTypes[7] = {INT8OID, TEXTOID, INT8OID, INT4OID, INT4OID, INT4OID, INTERVALOID};
const char *const kChunkResultColumns[7] = {"run_id", "status", "chunks_total", "chunks_done", "chunks_skipped",
                                            "rows_changed", "elapsed"};
const Oid kChunkResultTypes[7] = {INT8OID, TEXTOID, INT4OID, INT4OID, INT4OID, INT8OID, INTERVALOID};

/*
 * parallel_guarantee.trace_phases: where the time of the call went, one NOTICE (bench/phases.sh
 * reads it).  A phase the run did not reach (no Gather launched, say) shows as "-".
 */
void SayPhases(const RunShared *run) {
    static const char *const kNames[kRunPhases] = {
        "", "checks and registration", "worker start", "connection", "recording the run",
        "waiting and planning", "launch", "execution and commit", "recording the end",
        "result to the caller", "worker exit"};
    StringInfoData text;
    initStringInfo(&text);
    appendStringInfo(&text, "parallel_guarantee: run %lld phases (ms):", static_cast<long long>(run->run_id));
    TimestampTz previous = run->phase_at[kPhaseCalled];
    for (int p = kPhaseRegistered; p < kRunPhases; p++) {
        TimestampTz at = run->phase_at[p];
        if (at == 0 || previous == 0) {
            appendStringInfo(&text, "%s %s -", p == kPhaseRegistered ? "" : ",", kNames[p]);
            continue;
        }
        appendStringInfo(&text, "%s %s %.3f", p == kPhaseRegistered ? "" : ",", kNames[p],
                         static_cast<double>(at - previous) / 1000.0);
        previous = at;
    }
    appendStringInfo(&text, "; total %.3f",
                     static_cast<double>(run->phase_at[kPhaseReturned] - run->phase_at[kPhaseCalled]) / 1000.0);
    ereport(NOTICE, (errmsg_internal("%s", text.data), errhidecontext(true)));
}

}  // namespace

Datum RunWithGuarantee(FunctionCallInfo fcinfo) {
    TimestampTz call_start = GetCurrentTimestamp();
    CheckCanStartRun("run_with_parallel_guarantee");
    RunRequest request = ReadRequest(fcinfo, kRunArgs);
    if (request.kind == StatementKind::kConcurrentBuild)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("a concurrent index build cannot run in a call that waits for it"),
                 errdetail("After its first phase a concurrent build waits for every transaction whose snapshot "
                           "is older than its own to end, the calling one included: the build would wait for "
                           "the call, which waits for the build."),
                 errhint("Start it with submit_parallel_guarantee(...) and follow it with "
                         "parallel_guarantee_status(run_id); a session waiting with parallel_guarantee_wait holds it "
                         "up the same way until its timeout.")));
    TupleDesc tupdesc = ResultRowType(fcinfo, "run_with_parallel_guarantee");

    int64 run_id = 0;
    Launched launched = StartRun(fcinfo, request, false, &run_id);
    launched.run->phase_at[kPhaseCalled] = call_start;
    launched.run->phase_at[kPhaseRegistered] = GetCurrentTimestamp();
    RunShared *run = AwaitWorker(launched, run_id, "parallel_guarantee worker");
    if (g_trace_phases) SayPhases(run);
    if (run->status == RunStatus::kRunning) {
        dsm_detach(launched.seg);
        ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
                        errmsg("the worker of guaranteed run %lld exited without a result",
                               static_cast<long long>(run_id)),
                        errhint("Check the server log for what stopped it.")));
    }

    Datum values[7];
    bool nulls[7] = {false, false, false, false, false, false, false};
    /* (run_id, status, rows, workers_planned, workers_launched, attempts, elapsed) */
    values[0] = Int64GetDatum(run_id);
    values[1] = CStringGetTextDatum(StatusName(run->status));
    values[2] = Int64GetDatum(static_cast<int64>(run->rows));
    values[3] = Int32GetDatum(run->planned);
    values[4] = Int32GetDatum(run->launched);
    nulls[3] = run->planned < 0;
    nulls[4] = run->launched < 0;
    values[5] = Int32GetDatum(run->attempts_used);
    auto *elapsed = static_cast<Interval *>(palloc0(sizeof(Interval)));
    elapsed->time = GetCurrentTimestamp() - call_start;
    values[6] = IntervalPGetDatum(elapsed);
    dsm_detach(launched.seg);
    return FormResult(tupdesc, kResultColumns, kResultTypes, values, nulls);
}

/* submit_parallel_guarantee: starts a run that goes on without the caller; returns its id. */
Datum SubmitRun(FunctionCallInfo fcinfo) {
    CheckCanStartRun("submit_parallel_guarantee");
    RunRequest request = ReadRequest(fcinfo, kSubmitArgs);
    int64 run_id = 0;
    Launched launched = StartRun(fcinfo, request, true, &run_id);
    dsm_detach(launched.seg);
    RememberSubmittedRun(run_id);
    PG_RETURN_INT64(run_id);
}

/* run_in_chunks / resume_chunks: starts the coordinator, relays its NOTICEs, returns the row. */
Datum RunChunks(FunctionCallInfo fcinfo, bool resume, bool async) {
    TimestampTz call_start = GetCurrentTimestamp();
    const char *function = async ? "submit_chunks" : resume ? "resume_chunks" : "run_in_chunks";
    CheckCanStartRun(function);
    RunRequest r = ReadChunkRequest(fcinfo, resume);

    int64 run_id = 0;
    if (async) {
        /* Nobody waits: the run goes on after this session; its id is returned at once. */
        Launched launched = StartRun(fcinfo, r, true, &run_id);
        dsm_detach(launched.seg);
        RememberSubmittedRun(run_id);
        PG_RETURN_INT64(run_id);
    }
    TupleDesc tupdesc = ResultRowType(fcinfo, function);
    static const char *const kStatus[] = {"running", "done", "failed", "cancelled"};
    Datum values[7];
    bool nulls[7] = {false, false, false, false, false, false, false};
    RunRow finished;
    if (resume && ResumeOfDoneRun(fcinfo, r.resume_run_id, &finished)) {
        /* Nothing left to do: the run's row, and no worker started. */
        ereport(NOTICE, (errmsg("parallel_guarantee: chunked run %lld is already done: nothing to resume",
                                static_cast<long long>(r.resume_run_id))));
        values[0] = Int64GetDatum(r.resume_run_id);
        values[1] = CStringGetTextDatum("done");
        values[2] = Int32GetDatum(finished.chunks_total);
        values[3] = Int32GetDatum(finished.chunks_done);
        values[4] = Int32GetDatum(finished.chunks_skipped);
        values[5] = Int64GetDatum(finished.rows_changed);
        auto *elapsed = static_cast<Interval *>(palloc0(sizeof(Interval)));
        elapsed->time = GetCurrentTimestamp() - call_start;
        values[6] = IntervalPGetDatum(elapsed);
        return FormResult(tupdesc, kChunkResultColumns, kChunkResultTypes, values, nulls);
    }
    Launched launched = StartRun(fcinfo, r, false, &run_id);
    RunShared *run = nullptr;
    MemoryContext caller_context = CurrentMemoryContext;
    PG_TRY();
    {
        run = AwaitWorker(launched, run_id, "parallel_guarantee chunk worker");
    }
    PG_CATCH();
    {
        /*
         * The caller was cancelled (pg_cancel_backend, statement_timeout): the run stops after
         * its committed chunks.  Say which run it was and how to go on.
         */
        MemoryContextSwitchTo(caller_context);
        ErrorData *edata = CopyErrorData();
        if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED || edata->hint != nullptr) PG_RE_THROW();
        FlushErrorState();
        edata->detail = psprintf("Chunked run %lld stops after the chunks it has committed; they stay committed.",
                                 static_cast<long long>(run_id));
        edata->hint = psprintf("Continue it with SELECT * FROM parallel_guarantee.resume_chunks(%lld); chunks "
                               "already done are not run again.",
                               static_cast<long long>(run_id));
        ReThrowError(edata);
    }
    PG_END_TRY();
    if (run->chunk_status == ChunkStatus::kRunning) {
        dsm_detach(launched.seg);
        ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
                        errmsg("the worker of chunked run %lld exited without a result",
                               static_cast<long long>(run_id)),
                        errhint("Check the server log; SELECT * FROM parallel_guarantee.resume_chunks(%lld) continues the run.",
                                static_cast<long long>(run_id))));
    }
    values[0] = Int64GetDatum(run_id);
    values[1] = CStringGetTextDatum(kStatus[static_cast<int>(run->chunk_status)]);
    values[2] = Int32GetDatum(run->chunks_total);
    values[3] = Int32GetDatum(run->chunks_done);
    values[4] = Int32GetDatum(run->chunks_skipped);
    values[5] = Int64GetDatum(static_cast<int64>(run->rows));
    auto *elapsed = static_cast<Interval *>(palloc0(sizeof(Interval)));
    elapsed->time = GetCurrentTimestamp() - call_start;
    values[6] = IntervalPGetDatum(elapsed);
    dsm_detach(launched.seg);
    return FormResult(tupdesc, kChunkResultColumns, kChunkResultTypes, values, nulls);
}

}  // namespace pgguarantee
