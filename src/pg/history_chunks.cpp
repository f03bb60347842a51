/*
 * history_chunks.cpp: the rows of chunked runs and their chunks (history.hpp).  Every
 * statement here runs as the tables' owner through spi_xact.hpp, which lists them.
 */
#include "pg/history.hpp"

#include "pg/settings.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/spi_xact.hpp"

extern "C" {
#include "catalog/pg_type.h"
}

namespace pgguarantee {

namespace {

Oid g_owner = InvalidOid;
char *g_runs_table = nullptr;     /* "schema".parallel_guarantee_chunk_run_history */
char *g_chunks_table = nullptr;   /* "schema".parallel_guarantee_chunk_history */

/* Plans kept for the life of the worker: statements run once per chunk. */
SPIPlanPtr g_insert_plan = nullptr;
SPIPlanPtr g_lock_plan = nullptr;
SPIPlanPtr g_done_plan = nullptr;

/* Runs one statement as the owner inside the current transaction (SPI connected). */
int Owner(const char *sql, int nargs, const Oid *types, Datum *values, const char *nulls = nullptr,
          SPIPlanPtr *keep = nullptr) {
    return OwnerExecute(g_owner, sql, OwnerParams{nargs, types, values, nulls}, keep);
}

/* Runs one statement as the owner in a transaction of its own. */
void OwnerStatement(const char *what, const char *sql, int nargs, const Oid *types, Datum *values,
                    const char *nulls) {
    (void) OwnerTransaction(what, OnFailure::kRaise, false, [&] { (void) Owner(sql, nargs, types, values, nulls); });
}

/*
 * Runs one query about the run (its id as $1) as the owner, in a transaction of its own;
 * read() takes what it needs from SPI_tuptable before the commit (anything kept past it is
 * copied out of SPI's memory).
 */
template <typename Read>
void OwnerQuery(const RunShared *run, const char *what, const char *sql, Read read) {
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(run->run_id)};
    (void) OwnerTransaction(what, OnFailure::kRaise, false, [&] {
        (void) Owner(sql, 1, types, values);
        read();
    });
}

/* A text value in TopMemoryContext (null stays null). */
char *Keep(const char *text) {
    return text == nullptr ? nullptr : MemoryContextStrdup(TopMemoryContext, text);
}

}  // namespace

void ChunkHistoryOpen(const RunShared *run) {
    if (g_runs_table != nullptr) return;
    StartTransactionCommand();
    ExtensionTables tables = FindExtensionTables(run->extension_namespace, "parallel_guarantee_chunk_run_history");
    if (!OidIsValid(tables.owner))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the chunk tables of parallel_guarantee are missing"),
                        errhint("Update the extension: ALTER EXTENSION parallel_guarantee UPDATE;")));
    g_owner = tables.owner;
    g_runs_table = Keep(psprintf("%s.parallel_guarantee_chunk_run_history", tables.schema));
    g_chunks_table = Keep(psprintf("%s.parallel_guarantee_chunk_history", tables.schema));
    CommitTransactionCommand();
}

void ChunkHistoryRecordRun(const RunShared *run, const char *keys_query, const char *action, const char *label) {
    StartTransactionCommand();
    char *role = Keep(GetUserNameFromId(run->current_user_id, true));
    char *database = Keep(get_database_name(MyDatabaseId));
    CommitTransactionCommand();
    char nulls[12];
    memset(nulls, ' ', sizeof nulls);
    Oid types[12] = {INT8OID, TEXTOID, OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
                     INT4OID, INT4OID, INT4OID, INT4OID, TIMESTAMPTZOID};
    Datum values[12];
    values[0] = Int64GetDatum(run->run_id);
    values[1] = label ? CStringGetTextDatum(label) : (Datum) 0;
    nulls[1] = label ? ' ' : 'n';
    values[2] = ObjectIdGetDatum(run->current_user_id);
    values[3] = role ? CStringGetTextDatum(role) : (Datum) 0;
    nulls[3] = role ? ' ' : 'n';
    values[4] = database ? CStringGetTextDatum(database) : (Datum) 0;
    nulls[4] = database ? ' ' : 'n';
    values[5] = CStringGetTextDatum(keys_query);
    values[6] = CStringGetTextDatum(action);
    values[7] = Int32GetDatum(run->chunk_size);
    values[8] = Int32GetDatum(run->max_retries);
    values[9] = Int32GetDatum(run->max_skipped);
    values[10] = Int32GetDatum(run->chunk_workers);
    values[11] = TimestampTzGetDatum(GetCurrentTimestamp());
    char *sql = psprintf("INSERT INTO %s (run_id, label, role_oid, role_name, database_name, "
                         "keys_query, action, chunk_size, max_retries, max_skipped, workers, "
                         "started_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                         "$11, $12, 'running')",
                         g_runs_table);
    OwnerStatement("record a chunk run", sql, 12, types, values, nulls);
}

void ChunkHistorySetStatus(const RunShared *run, const char *status, const char *sqlstate, const char *message) {
    bool ends = strcmp(status, "running") != 0;
    /* A run that ends purges the chunked runs (their chunks go with them) older than history_days. */
    char nulls[6] = {' ', ' ', sqlstate ? ' ' : 'n', message ? ' ' : 'n', ' ', ' '};
    Oid types[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TIMESTAMPTZOID};
    Datum values[6] = {Int64GetDatum(run->run_id), CStringGetTextDatum(status),
                       sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0,
                       message ? CStringGetTextDatum(message) : (Datum) 0,
                       BoolGetDatum(ends && g_history_days > 0),
                       TimestampTzGetDatum(TimestampTzPlusMilliseconds(
                           GetCurrentTimestamp(), -static_cast<int64>(g_history_days) * 24 * 3600 * 1000))};
    char *sql = psprintf("WITH purge AS (DELETE FROM %s WHERE $5 AND finished_at" PG_OP("<") "$6 "
                         "AND run_id" PG_OP("<>") "$1 RETURNING 1) "
                         "UPDATE %s SET status = $2, sqlstate = $3, message = $4, "
                         "finished_at = CASE WHEN $2" PG_OP("=") "'running' THEN NULL "
                         "ELSE pg_catalog.clock_timestamp() END WHERE run_id" PG_OP("=") "$1 "
                         "RETURNING label, started_at, finished_at",
                         g_runs_table, g_runs_table);
    char *details = psprintf("\"workers_planned\": null, \"workers_launched\": null, \"attempts\": null, "
                             "\"chunks_total\": %d, \"chunks_done\": %d, \"chunks_skipped\": %d, \"rows\": %llu",
                             run->chunks_total, run->chunks_done, run->chunks_skipped,
                             static_cast<unsigned long long>(run->rows));
    (void) OwnerTransaction("set a chunk run's status", OnFailure::kRaise, false, [&] {
        (void) Owner(sql, 6, types, values, nulls);
        if (ends) NotifyRunEnd(run->run_id, "chunked", status, details);
    });
}

void ChunkHistoryStoreChunk(Datum *values) {
    /* Called from inside the keys query's executor, which holds the caller's SPI connection. */
    if (SPI_connect() != SPI_OK_CONNECT)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("parallel_guarantee: SPI_connect failed")));
    static const Oid types[6] = {INT8OID, INT4OID, BYTEAOID, TEXTOID, TEXTOID, INT4OID};
    char *sql = psprintf("INSERT INTO %s (run_id, chunk_no, keys, first_key, last_key, key_count, state) "
                         "VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
                         g_chunks_table);
    (void) Owner(sql, 6, types, values, nullptr, &g_insert_plan);
    SPI_finish();
}

void ChunkHistoryStoreKeySet(const RunShared *run, Oid key_type, uint64 nkeys, int nchunks) {
    char *sql = psprintf("UPDATE %s SET key_type = $2, total_keys = $3, total_chunks = $4 "
                         "WHERE run_id" PG_OP("=") "$1",
                         g_runs_table);
    Oid types[4] = {INT8OID, OIDOID, INT8OID, INT4OID};
    Datum values[4] = {Int64GetDatum(run->run_id), ObjectIdGetDatum(key_type), Int64GetDatum(static_cast<int64>(nkeys)),
                       Int32GetDatum(nchunks)};
    (void) Owner(sql, 4, types, values);
}

bool ChunkHistoryLockPending(const RunShared *run, int chunk_no, Datum *binary_keys) {
    Oid types[2] = {INT8OID, INT4OID};
    Datum values[2] = {Int64GetDatum(run->run_id), Int32GetDatum(chunk_no)};
    char *sql = psprintf("SELECT attempts, keys FROM %s WHERE run_id" PG_OP("=") "$1 AND chunk_no" PG_OP("=") "$2 "
                         "AND state" PG_OP("=") "'pending' FOR UPDATE",
                         g_chunks_table);
    int rc = Owner(sql, 2, types, values, nullptr, &g_lock_plan);
    if (rc != SPI_OK_SELECT || SPI_processed != 1) return false;
    bool isnull;
    *binary_keys = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
    return true;
}

void ChunkHistoryMarkDone(const RunShared *run, int chunk_no, uint64 rows) {
    char *sql = psprintf("UPDATE %s SET state = 'done', attempts = attempts" PG_OP("+") "1, rows = $3, "
                         "worker_pid = $4, started_at = $5, finished_at = pg_catalog.clock_timestamp(), "
                         "sqlstate = NULL, error = NULL WHERE run_id" PG_OP("=") "$1 AND chunk_no" PG_OP("=") "$2",
                         g_chunks_table);
    Oid types[5] = {INT8OID, INT4OID, INT8OID, INT4OID, TIMESTAMPTZOID};
    Datum values[5] = {Int64GetDatum(run->run_id), Int32GetDatum(chunk_no), Int64GetDatum(static_cast<int64>(rows)),
                       Int32GetDatum(MyProcPid), TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())};
    (void) Owner(sql, 5, types, values, nullptr, &g_done_plan);
}

ChunkTry ChunkHistoryCountFailure(const RunShared *run, int chunk_no, const ErrorData *edata, int *tries) {
    ChunkTry outcome = ChunkTry::kNotPending;
    (void) OwnerTransaction("count a chunk's failed try", OnFailure::kRaise, false, [&] {
        outcome = ChunkTry::kNotPending;
        Oid key_types[2] = {INT8OID, INT4OID};
        Datum key_values[2] = {Int64GetDatum(run->run_id), Int32GetDatum(chunk_no)};
        char *lock = psprintf("SELECT attempts FROM %s WHERE run_id" PG_OP("=") "$1 AND chunk_no" PG_OP("=") "$2 "
                              "AND state" PG_OP("=") "'pending' FOR UPDATE",
                              g_chunks_table);
        int rc = Owner(lock, 2, key_types, key_values);
        if (rc != SPI_OK_SELECT || SPI_processed != 1) return;
        bool isnull;
        *tries = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) + 1;
        const char *state = "pending";
        outcome = ChunkTry::kRetry;
        if (*tries > run->max_retries) {
            /* Skip it if the run may skip one more; otherwise the run fails here. */
            char *skip = psprintf("UPDATE %s SET chunks_skipped = chunks_skipped" PG_OP("+") "1 "
                                  "WHERE run_id" PG_OP("=") "$1 AND chunks_skipped" PG_OP("<") "max_skipped "
                                  "RETURNING run_id",
                                  g_runs_table);
            rc = Owner(skip, 1, key_types, key_values);
            bool skipped = rc == SPI_OK_UPDATE_RETURNING && SPI_processed == 1;
            state = skipped ? "skipped" : "failed";
            outcome = skipped ? ChunkTry::kSkipped : ChunkTry::kFailed;
        }
        char *mark = psprintf("UPDATE %s SET state = $3, sqlstate = $4, error = $5, attempts = attempts" PG_OP("+") "1, "
                              "worker_pid = $6, started_at = coalesce(started_at, pg_catalog.clock_timestamp()), "
                              "finished_at = pg_catalog.clock_timestamp() "
                              "WHERE run_id" PG_OP("=") "$1 AND chunk_no" PG_OP("=") "$2",
                              g_chunks_table);
        Oid types[6] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INT4OID};
        Datum values[6] = {Int64GetDatum(run->run_id), Int32GetDatum(chunk_no), CStringGetTextDatum(state),
                           CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode)),
                           CStringGetTextDatum(edata->message), Int32GetDatum(MyProcPid)};
        (void) Owner(mark, 6, types, values);
    });
    return outcome;
}

int ChunkHistoryPending(const RunShared *run, int **out) {
    int n = 0;
    char *sql = psprintf("SELECT chunk_no FROM %s WHERE run_id" PG_OP("=") "$1 AND state" PG_OP("=") "'pending' "
                         "ORDER BY chunk_no",
                         g_chunks_table);
    OwnerQuery(run, "list a chunk run's pending chunks", sql, [&] {
        n = 0;
        *out = static_cast<int *>(MemoryContextAlloc(TopMemoryContext, sizeof(int) * Max(SPI_processed, 1)));
        for (uint64 i = 0; i < SPI_processed; i++) {
            bool isnull;
            (*out)[n++] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
        }
    });
    return n;
}

ChunkTally ChunkHistoryTally(const RunShared *run) {
    ChunkTally t{};
    char *sql = psprintf("SELECT coalesce(pg_catalog.sum(rows) FILTER (WHERE state" PG_OP("=") "'done'), 0)::" PG_INT8 ", "
                         "pg_catalog.count(*) FILTER (WHERE state" PG_OP("=") "'done')::" PG_INT4 ", "
                         "pg_catalog.count(*) FILTER (WHERE state" PG_OP("=") "'skipped')::" PG_INT4 ", "
                         "pg_catalog.count(*) FILTER (WHERE state" PG_OP("=") "'failed')::" PG_INT4 ", "
                         "pg_catalog.count(*) FILTER (WHERE state" PG_OP("=") "'pending' "
                         "                           OR state" PG_OP("=") "'running')::" PG_INT4 ", "
                         "pg_catalog.count(*)::" PG_INT4 " FROM %s WHERE run_id" PG_OP("=") "$1",
                         g_chunks_table);
    OwnerQuery(run, "tally a chunk run", sql, [&] {
        bool isnull;
        HeapTuple tuple = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        t.rows = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
        t.done = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
        t.skipped = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
        t.failed = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
        t.pending = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
        t.total = DatumGetInt32(SPI_getbinval(tuple, desc, 6, &isnull));
    });
    return t;
}

ChunkFailure ChunkHistoryFirstFailure(const RunShared *run) {
    ChunkFailure f{};
    char *sql = psprintf("SELECT chunk_no, attempts, sqlstate, error FROM %s "
                         "WHERE run_id" PG_OP("=") "$1 AND state" PG_OP("=") "'failed' ORDER BY chunk_no LIMIT 1",
                         g_chunks_table);
    OwnerQuery(run, "read a chunk run's first failed chunk", sql, [&] {
        HeapTuple tuple = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        f.chunk_no = Keep(SPI_getvalue(tuple, desc, 1));
        f.attempts = Keep(SPI_getvalue(tuple, desc, 2));
        f.sqlstate = Keep(SPI_getvalue(tuple, desc, 3));
        f.error = Keep(SPI_getvalue(tuple, desc, 4));
    });
    return f;
}

void ChunkHistoryLoadResume(RunShared *run, char **action_out) {
    (void) OwnerTransaction("load a chunk run to resume", OnFailure::kRaise, false, [&] {
        char *sql = psprintf("SELECT action, key_type, chunk_size, max_retries, max_skipped, status, role_oid, "
                             "workers FROM %s WHERE run_id" PG_OP("=") "$1 FOR UPDATE",
                             g_runs_table);
        Oid types[1] = {INT8OID};
        Datum values[1] = {Int64GetDatum(run->run_id)};
        (void) Owner(sql, 1, types, values, nullptr);
        if (SPI_processed != 1)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                            errmsg("there is no chunked run %lld to resume", static_cast<long long>(run->run_id))));
        HeapTuple tuple = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull;
        char *status = SPI_getvalue(tuple, desc, 6);
        Oid role = DatumGetObjectId(SPI_getbinval(tuple, desc, 7, &isnull));
        if (!has_privs_of_role(run->current_user_id, role))
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                            errmsg("permission denied to resume chunked run %lld", static_cast<long long>(run->run_id)),
                            errhint("Only the run's role, its members and superusers may resume it.")));
        /*
         * The action goes on as the run's own role, never with the resumer's privileges (a
         * member or superuser has all of that role's, so this is never more than either has).
         */
        run->current_user_id = role;
        run->outer_user_id = role;
        run->role_is_superuser = superuser_arg(role);
        /*
         * The session stays the resumer's: its action must not get back to the resumer's role
         * (RESET ROLE, SET ROLE, SET SESSION AUTHORIZATION are refused, as in a security-definer
         * function).
         */
        run->sec_context |= SECURITY_LOCAL_USERID_CHANGE;
        if (strcmp(status, "done") == 0)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("chunked run %lld is already done", static_cast<long long>(run->run_id))));
        /* Another resume of the same run holds a run slot too (the row lock orders us after it). */
        if (CountRunsWithId(run->run_id) > 1)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
                            errmsg("chunked run %lld is still in progress", static_cast<long long>(run->run_id))));
        Datum key_type = SPI_getbinval(tuple, desc, 2, &isnull);
        if (isnull)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("chunked run %lld never got its key set, so there is nothing to resume",
                                   static_cast<long long>(run->run_id)),
                            errhint("Start it again with run_in_chunks.")));
        run->key_type = DatumGetObjectId(key_type);
        run->chunk_size = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
        run->max_retries = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
        run->max_skipped = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
        run->chunk_workers = DatumGetInt32(SPI_getbinval(tuple, desc, 8, &isnull));
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        *action_out = pstrdup(SPI_getvalue(tuple, desc, 1));
        MemoryContextSwitchTo(old);

        /* Chunks a stopped worker held were rolled back with it; failed ones get a new try. */
        char *reset = psprintf("UPDATE %s SET state = 'pending', attempts = 0 WHERE run_id" PG_OP("=") "$1 "
                               "AND (state" PG_OP("=") "'running' OR state" PG_OP("=") "'failed')",
                               g_chunks_table);
        (void) Owner(reset, 1, types, values, nullptr);
        /*
         * A worker of the earlier run may still be on a chunk (its row locked): the chunk is
         * not run again, because a worker runs a chunk only after locking its row and finding
         * it still pending.
         */
        char *count = psprintf("SELECT coalesce(pg_catalog.max(chunk_no), 0)::" PG_INT4 " FROM %s "
                               "WHERE run_id" PG_OP("=") "$1", g_chunks_table);
        (void) Owner(count, 1, types, values, nullptr);
        run->chunks_total = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        char *running = psprintf("UPDATE %s SET status = 'running', finished_at = NULL, sqlstate = NULL, "
                                 "message = NULL WHERE run_id" PG_OP("=") "$1",
                                 g_runs_table);
        (void) Owner(running, 1, types, values, nullptr);
    });
}

char *ChunkHistoryAction(const RunShared *run) {
    char *action = nullptr;
    char *sql = psprintf("SELECT action FROM %s WHERE run_id" PG_OP("=") "$1", g_runs_table);
    OwnerQuery(run, "read a chunk run's action", sql, [&] {
        action = SPI_processed == 1 ? Keep(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)) : nullptr;
    });
    return action;
}

}  // namespace pgguarantee
