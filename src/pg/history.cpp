/*
 * history.cpp: see history.hpp.
 */
#include "pg/history.hpp"

#include "pg/settings.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/spi_xact.hpp"
#include "pg/worker/vacuum.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
}

namespace pgguarantee {

namespace {

bool g_history_ready = false;   /* tables found */
Oid g_history_owner = InvalidOid;
char *g_runs_table = nullptr;      /* "schema".parallel_guarantee_run_history */
char *g_attempts_table = nullptr;
bool g_pass_columns = false;       /* the attempts table keeps a VACUUM's passes (1.2.0 on) */

/*
 * Runs one statement in a bookkeeping transaction of its own, as the tables' owner
 * (spi_xact.hpp).  The caller's cancel must not cost the run its history: it stays pending
 * and stops the run right after the write.  A failure, once retried, is raised (kRaise) or
 * becomes a WARNING.
 */
void HistoryExec(const char *what, OnFailure on_failure, const char *sql, int nargs, Oid *types,
                 Datum *values, const char *nulls) {
    OwnerParams params{nargs, types, values, nulls};
    (void) OwnerTransaction(what, on_failure, true, [&] { (void) OwnerExecute(g_history_owner, sql, params); });
}

Datum TextOrNull(const char *s, char *null_flag) {
    *null_flag = s == nullptr ? 'n' : ' ';
    return s == nullptr ? (Datum) 0 : CStringGetTextDatum(s);
}

}  // namespace

void HistoryBegin(const RunShared *run, const char *statement, const char *cleanup,
                  const char *label) {
    /* Find the tables (absent on the first version). */
    StartTransactionCommand();
    ExtensionTables tables = FindExtensionTables(run->extension_namespace, "parallel_guarantee_run_history");
    if (OidIsValid(tables.owner)) {
        g_history_owner = tables.owner;
        g_runs_table = MemoryContextStrdup(TopMemoryContext,
                                           psprintf("%s.parallel_guarantee_run_history", tables.schema));
        g_attempts_table = MemoryContextStrdup(TopMemoryContext,
                                               psprintf("%s.parallel_guarantee_attempt_history", tables.schema));
        /* A database still on older SQL than the library: its attempts have no pass columns. */
        Oid attempts = get_relname_relid("parallel_guarantee_attempt_history", run->extension_namespace);
        g_pass_columns = OidIsValid(attempts) && get_attnum(attempts, "pass_workers_launched") != InvalidAttrNumber &&
                         get_attnum(attempts, "pass_workers_planned") != InvalidAttrNumber;
        g_history_ready = true;
    }
    char *role = GetUserNameFromId(run->current_user_id, true);
    char *database = get_database_name(MyDatabaseId);
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    role = role ? pstrdup(role) : nullptr;
    database = database ? pstrdup(database) : nullptr;
    MemoryContextSwitchTo(old);
    CommitTransactionCommand();
    if (!g_history_ready) return;

    /*
     * Runs marked running whose worker is gone (killed, server crash) are lost.  Only rows
     * that started before the list of live runs was read: a run that starts meanwhile is
     * alive though absent from the list.
     */
    TimestampTz listed_at = GetCurrentTimestamp();
    int nlive = 0;
    auto *ids = static_cast<int64 *>(palloc(sizeof(int64) * (MaxRuns() + 1)));
    nlive = LiveRunIds(MyDatabaseId, ids);
    Datum *live = static_cast<Datum *>(palloc(sizeof(Datum) * (MaxRuns() + 1)));
    for (int i = 0; i < nlive; i++) live[i] = Int64GetDatum(ids[i]);
    if (nlive == 0) live[nlive++] = Int64GetDatum(run->run_id);
    ArrayType *live_array = construct_array(live, nlive, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE);

    /*
     * One statement, one transaction: runs marked running whose worker is gone (killed,
     * server crash) become lost, and this run is recorded.
     */
    const RunOptions &o = run->options;
    char nulls[21];
    memset(nulls, ' ', sizeof nulls);
    Datum values[21];
    Oid types[21] = {INT8OID, TEXTOID, OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
                     INT4OID, INT4OID, INT8OID, BOOLOID, BOOLOID, INT8OID, INT4OID, BOOLOID,
                     INT4OID, INT4OID, TIMESTAMPTZOID, INT8ARRAYOID, TIMESTAMPTZOID};
    values[0] = Int64GetDatum(run->run_id);
    values[1] = TextOrNull(label, &nulls[1]);
    values[2] = ObjectIdGetDatum(run->current_user_id);
    values[3] = TextOrNull(role, &nulls[3]);
    values[4] = TextOrNull(database, &nulls[4]);
    values[5] = CStringGetTextDatum(statement);
    values[6] = TextOrNull(cleanup, &nulls[6]);
    values[7] = Int32GetDatum(o.target_workers);
    values[8] = Int32GetDatum(o.min_workers);
    values[9] = Int32GetDatum(o.max_attempts);
    values[10] = Int64GetDatum(o.retry_delay_ms);
    values[11] = BoolGetDatum(run->force_workers);
    values[12] = BoolGetDatum(run->wait_for_slots);
    values[13] = Int64GetDatum(run->max_wait_ms);
    values[14] = Int32GetDatum(run->priority);
    values[15] = BoolGetDatum(run->async);
    values[16] = Int32GetDatum(run->caller_pid);
    values[17] = Int32GetDatum(MyProcPid);
    values[18] = TimestampTzGetDatum(GetCurrentTimestamp());
    values[19] = PointerGetDatum(live_array);
    values[20] = TimestampTzGetDatum(listed_at);
    char *sql = psprintf(
        "WITH lost AS (UPDATE %s SET status = 'lost', finished_at = pg_catalog.clock_timestamp() "
        "              WHERE status" PG_OP("=") "'running' AND run_id" PG_OP("<>") "ALL ($20) "
        "                AND started_at" PG_OP("<") "$21 RETURNING 1) "
        "INSERT INTO %s (run_id, label, role_oid, role_name, database_name, statement, cleanup, "
        "target_workers, min_workers, max_attempts, retry_delay_ms, force_workers, wait_for_slots, "
        "max_wait_ms, priority, async, caller_pid, worker_pid, started_at, status) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
        "$19, 'running')",
        g_runs_table, g_runs_table);
    /* A run the history cannot show would be invisible to status: it does not start. */
    HistoryExec("record the run in the history", OnFailure::kRaise, sql, 21, types, values, nulls);
}

namespace {

/* How many parameters an attempt's row takes. */
int AttemptParams() {
    return g_pass_columns ? 10 : 8;
}

ArrayType *IntArray(const int *items, int count) {
    Datum *datums = static_cast<Datum *>(palloc(sizeof(Datum) * Max(count, 1)));
    for (int i = 0; i < count; i++) datums[i] = Int32GetDatum(items[i]);
    return construct_array(datums, count, INT4OID, sizeof(int32), true, TYPALIGN_INT);
}

/* The attempt's values, as parameters first..first+AttemptParams()-1 of a statement. */
void AttemptValues(const RunShared *run, int attempt, TimestampTz started, int first, Datum *values,
                   char *nulls, Oid *types) {
    const AttemptRecord &r = run->attempts[attempt - 1];
    Oid t[10] = {INT8OID, INT4OID, TIMESTAMPTZOID, INT8OID, INT8OID, INT4OID, INT4OID, TEXTOID, INT4ARRAYOID,
                 INT4ARRAYOID};
    for (int i = 0; i < AttemptParams(); i++) {
        types[first + i] = t[i];
        nulls[first + i] = ' ';
    }
    values[first + 0] = Int64GetDatum(run->run_id);
    values[first + 1] = Int32GetDatum(attempt);
    values[first + 2] = TimestampTzGetDatum(started);
    values[first + 3] = Int64GetDatum(r.waited_ms);
    values[first + 4] = Int64GetDatum(r.duration_us);
    values[first + 5] = Int32GetDatum(r.planned);
    nulls[first + 5] = r.planned < 0 ? 'n' : ' ';
    values[first + 6] = Int32GetDatum(r.launched);
    nulls[first + 6] = r.launched < 0 ? 'n' : ' ';
    values[first + 7] = CStringGetTextDatum(OutcomeName(r.outcome));
    if (!g_pass_columns) return;
    /* A VACUUM's passes, in order; NULL for an attempt that ran no VACUUM. */
    VacuumPasses passes{0, nullptr, nullptr};
    bool vacuumed = VacuumPassesOf(attempt, &passes);
    values[first + 8] = vacuumed ? PointerGetDatum(IntArray(passes.planned, passes.count)) : (Datum) 0;
    values[first + 9] = vacuumed ? PointerGetDatum(IntArray(passes.launched, passes.count)) : (Datum) 0;
    nulls[first + 8] = nulls[first + 9] = vacuumed ? ' ' : 'n';
}

/* INSERT of an attempt's row whose values are parameters first+1.. (1-based, as SPI numbers them). */
char *AttemptInsert(int first) {
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql, "INSERT INTO %s (run_id, attempt, started_at, waited_ms, duration_us, "
                           "workers_planned, workers_launched, outcome%s) VALUES (",
                     g_attempts_table, g_pass_columns ? ", pass_workers_planned, pass_workers_launched" : "");
    for (int i = 0; i < AttemptParams(); i++) appendStringInfo(&sql, "%s$%d", i > 0 ? ", " : "", first + i + 1);
    appendStringInfoChar(&sql, ')');
    return sql.data;
}

/* The last attempt, kept to be written with the run's end in one transaction. */
int g_pending_attempt = 0;
TimestampTz g_pending_started = 0;

}  // namespace

void HistoryAttempt(const RunShared *run, int attempt, TimestampTz started, bool final) {
    if (!g_history_ready) return;
    if (final) {
        g_pending_attempt = attempt;
        g_pending_started = started;
        return;
    }
    char nulls[10];
    Datum values[10];
    Oid types[10];
    AttemptValues(run, attempt, started, 0, values, nulls, types);
    HistoryExec("record an attempt in the history", OnFailure::kWarn, AttemptInsert(0), AttemptParams(), types,
                values, nulls);
}

void NotifyRunEnd(int64 run_id, const char *kind, const char *status, const char *details) {
    if (g_notify_channel == nullptr || g_notify_channel[0] == '\0') return;
    if (SPI_tuptable == nullptr || SPI_processed != 1 || SPI_tuptable->tupdesc->natts < 3) return;
    HeapTuple tuple = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    bool null_label, null_started, null_finished;
    Datum label = SPI_getbinval(tuple, desc, 1, &null_label);
    Datum started = SPI_getbinval(tuple, desc, 2, &null_started);
    Datum finished = SPI_getbinval(tuple, desc, 3, &null_finished);
    StringInfoData json;
    initStringInfo(&json);
    appendStringInfo(&json, "{\"run_id\": %lld, \"kind\": \"%s\", \"database\": ", static_cast<long long>(run_id), kind);
    char *database = get_database_name(MyDatabaseId);
    escape_json(&json, database ? database : "");
    appendStringInfoString(&json, ", \"label\": ");
    if (null_label) appendStringInfoString(&json, "null");
    else escape_json(&json, TextDatumGetCString(label));
    appendStringInfoString(&json, ", \"status\": ");
    escape_json(&json, status);
    appendStringInfo(&json, ", %s, \"elapsed_ms\": ", details);
    if (null_started || null_finished) appendStringInfoString(&json, "null");
    else appendStringInfo(&json, "%.3f", static_cast<double>(DatumGetTimestampTz(finished) - DatumGetTimestampTz(started)) / 1000.0);
    appendStringInfoChar(&json, '}');
    /* Queued in this transaction: listeners get it when the history row commits. */
    Async_Notify(g_notify_channel, json.data);
}

void HistoryFinish(const RunShared *run, const char *status, const char *sqlstate,
                   const char *message) {
    if (!g_history_ready) return;
    /* One statement: the last attempt, the run's end, and the purge of old runs. */
    char nulls[21];
    memset(nulls, ' ', sizeof nulls);
    Datum values[21];
    Oid types[21] = {INT8OID, TIMESTAMPTZOID, TEXTOID, INT8OID, INT4OID, INT4OID, INT4OID, TEXTOID,
                     TEXTOID, BOOLOID, TIMESTAMPTZOID};
    values[0] = Int64GetDatum(run->run_id);
    values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
    values[2] = CStringGetTextDatum(status);
    values[3] = Int64GetDatum(static_cast<int64>(run->rows));
    values[4] = Int32GetDatum(run->planned);
    nulls[4] = run->planned < 0 ? 'n' : ' ';
    values[5] = Int32GetDatum(run->launched);
    nulls[5] = run->launched < 0 ? 'n' : ' ';
    values[6] = Int32GetDatum(run->attempts_used);
    values[7] = TextOrNull(sqlstate, &nulls[7]);
    values[8] = TextOrNull(message, &nulls[8]);
    values[9] = BoolGetDatum(g_history_days > 0);
    values[10] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(
        GetCurrentTimestamp(), -static_cast<int64>(g_history_days) * 24 * 3600 * 1000));
    bool with_attempt = g_pending_attempt > 0;
    if (with_attempt)
        AttemptValues(run, g_pending_attempt, g_pending_started, 11, values, nulls, types);
    char *attempt_cte = with_attempt ? psprintf("attempt AS (%s RETURNING 1), ", AttemptInsert(11)) : pstrdup("");
    char *sql = psprintf("WITH %s"
                         "purge AS (DELETE FROM %s WHERE $10 AND finished_at" PG_OP("<") "$11 RETURNING 1) "
                         "UPDATE %s SET finished_at = $2, status = $3, rows = $4, "
                         "workers_planned = $5, workers_launched = $6, attempts = $7, "
                         "sqlstate = $8, message = $9 WHERE run_id" PG_OP("=") "$1 "
                         "RETURNING label, started_at, finished_at",
                         attempt_cte, g_runs_table, g_runs_table);
    char *details = psprintf("\"workers_planned\": %s, \"workers_launched\": %s, \"attempts\": %d, \"rows\": %llu",
                             run->planned < 0 ? "null" : psprintf("%d", run->planned),
                             run->launched < 0 ? "null" : psprintf("%d", run->launched), run->attempts_used,
                             static_cast<unsigned long long>(run->rows));
    OwnerParams params{with_attempt ? 11 + AttemptParams() : 11, types, values, nulls};
    (void) OwnerTransaction("record the run's end in the history", OnFailure::kWarn, true, [&] {
        (void) OwnerExecute(g_history_owner, sql, params);
        NotifyRunEnd(run->run_id, "guaranteed", status, details);
    });
    g_pending_attempt = 0;
}

void HistoryTerminated(const RunShared *run, int attempt, TimestampTz started) {
    if (!g_history_ready) return;
    /*
     * Terminated between attempts, after the last one (its cleanup, the run's end): the last
     * attempt, kept to be written with the run's end, is written now, as it was recorded.
     */
    int written = attempt;
    TimestampTz written_started = started;
    if (attempt == 0 && g_pending_attempt > 0) {
        written = g_pending_attempt;
        written_started = g_pending_started;
    }
    char nulls[14];
    memset(nulls, ' ', sizeof nulls);
    Datum values[14];
    Oid types[14] = {INT8OID, TEXTOID, TEXTOID, INT4OID};
    values[0] = Int64GetDatum(run->run_id);
    values[1] = CStringGetTextDatum(unpack_sql_state(ERRCODE_ADMIN_SHUTDOWN));
    const char *how = "(pg_terminate_backend, or the server shutting down)";
    values[2] = CStringGetTextDatum(
        attempt > 0 ? psprintf("the run's worker was terminated during attempt %d %s", attempt, how)
        : written > 0 ? psprintf("the run's worker was terminated after attempt %d, during its cleanup or the "
                                 "recording of the run's end %s",
                                 written, how)
                      : psprintf("the run's worker was terminated before its first attempt %s", how));
    values[3] = Int32GetDatum(run->attempts_used);
    if (written > 0) AttemptValues(run, written, written_started, 4, values, nulls, types);
    char *attempt_cte = written > 0 ? psprintf("attempt AS (%s RETURNING 1) ", AttemptInsert(4)) : pstrdup("");
    char *sql = psprintf("%s%sUPDATE %s SET status = 'lost', finished_at = pg_catalog.clock_timestamp(), "
                         "sqlstate = $2, message = $3, attempts = $4 "
                         "WHERE run_id" PG_OP("=") "$1 AND status" PG_OP("=") "'running'",
                         written > 0 ? "WITH " : "", attempt_cte, g_runs_table);
    HistoryExec("record the worker's termination in the history", OnFailure::kWarn, sql,
                written > 0 ? 4 + AttemptParams() : 4, types, values, nulls);
    g_pending_attempt = 0;
}

RunRow LookUpRunRow(Oid extension_namespace, bool chunked, int64 run_id, bool *tables_missing) {
    RunRow row{false, InvalidOid, false, false, 0, 0, 0, 0};
    const char *table = chunked ? "parallel_guarantee_chunk_run_history" : "parallel_guarantee_run_history";
    ExtensionTables tables = FindExtensionTables(extension_namespace, table);
    *tables_missing = !OidIsValid(tables.owner);
    if (*tables_missing) return row;
    char *sql = chunked
        ? psprintf("SELECT r.role_oid, r.status" PG_OP("=") "'running', r.status" PG_OP("=") "'done', "
                   "r.total_chunks, r.chunks_skipped, "
                   "(SELECT pg_catalog.count(*)::pg_catalog.int4 FROM %s.parallel_guarantee_chunk_history c "
                   "  WHERE c.run_id" PG_OP("=") "$1 AND c.state" PG_OP("=") "'done'), "
                   "(SELECT pg_catalog.sum(c.rows)::pg_catalog.int8 FROM %s.parallel_guarantee_chunk_history c "
                   "  WHERE c.run_id" PG_OP("=") "$1 AND c.state" PG_OP("=") "'done') "
                   "FROM %s.%s r WHERE r.run_id" PG_OP("=") "$1",
                   tables.schema, tables.schema, tables.schema, table)
        : psprintf("SELECT role_oid, status" PG_OP("=") "'running', status" PG_OP("=") "'done' "
                   "FROM %s.%s WHERE run_id" PG_OP("=") "$1",
                   tables.schema, table);
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(run_id)};
    if (SPI_connect() != SPI_OK_CONNECT)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("parallel_guarantee: SPI_connect failed")));
    int rc = OwnerExecute(tables.owner, sql, OwnerParams{1, types, values, nullptr}, nullptr, true);
    if (rc == SPI_OK_SELECT && SPI_processed == 1) {
        HeapTuple tuple = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull;
        row.found = true;
        row.role = DatumGetObjectId(SPI_getbinval(tuple, desc, 1, &isnull));
        row.running = DatumGetBool(SPI_getbinval(tuple, desc, 2, &isnull)) && !isnull;
        row.done = DatumGetBool(SPI_getbinval(tuple, desc, 3, &isnull)) && !isnull;
        if (chunked) {
            Datum d = SPI_getbinval(tuple, desc, 4, &isnull);
            row.chunks_total = isnull ? 0 : DatumGetInt32(d);
            d = SPI_getbinval(tuple, desc, 5, &isnull);
            row.chunks_skipped = isnull ? 0 : DatumGetInt32(d);
            d = SPI_getbinval(tuple, desc, 6, &isnull);
            row.chunks_done = isnull ? 0 : DatumGetInt32(d);
            d = SPI_getbinval(tuple, desc, 7, &isnull);
            row.rows_changed = isnull ? 0 : DatumGetInt64(d);
        }
    }
    SPI_finish();
    return row;
}

}  // namespace pgguarantee
