/*
 * chunks.cpp: see chunks.hpp.
 */
#include "pg/worker/chunks.hpp"

#include "pg/errors.hpp"
#include "pg/settings.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/spi_xact.hpp"
#include "pg/shmem/pool.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "catalog/pg_operator.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/syscache.h"
#include "utils/tuplesort.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
}

namespace pgguarantee {

namespace {

Oid g_owner = InvalidOid;
char *g_runs_table = nullptr;
char *g_chunks_table = nullptr;
MemoryContext g_chunk_context = nullptr;

bool ChunkCancelRequested(RunShared *run);

BackgroundWorkerHandle *g_helpers[kMaxChunkWorkers];
int g_nhelpers = 0;

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
            if (!signalled && (cancel || ChunkCancelRequested(run))) {
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
    if (ChunkCancelRequested(run)) QueryCancelPending = false;
    RESUME_INTERRUPTS();
}

bool ChunkCancelRequested(RunShared *run) {
    return pg_atomic_read_u32(&run->cancel_requested) != 0 ||
           SlotCancelRequested(run->slot_index, run->run_id);
}

/* Finds the chunk tables and their owner; an error if this database has no 0.3.0 objects. */
void ResolveTables(RunShared *run) {
    StartTransactionCommand();
    ExtensionTables tables = FindExtensionTables(run->extension_namespace, "parallel_guarantee_chunk_run_history");
    if (!OidIsValid(tables.owner))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the chunk tables of parallel_guarantee are missing"),
                        errhint("Update the extension: ALTER EXTENSION parallel_guarantee UPDATE;")));
    g_owner = tables.owner;
    g_chunk_context = AllocSetContextCreate(TopMemoryContext, "parallel_guarantee chunks",
                                            ALLOCSET_DEFAULT_SIZES);
    g_runs_table = MemoryContextStrdup(TopMemoryContext,
                                       psprintf("%s.parallel_guarantee_chunk_run_history", tables.schema));
    g_chunks_table = MemoryContextStrdup(TopMemoryContext,
                                         psprintf("%s.parallel_guarantee_chunk_history", tables.schema));
    CommitTransactionCommand();
}

/* Runs bookkeeping SQL inside the current transaction (SPI connected) as the tables' owner. */
int AsOwner(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, SPIPlanPtr *keep = nullptr) {
    return OwnerExecute(g_owner, sql, OwnerParams{nargs, types, values, nulls}, keep);
}

/* Runs one bookkeeping statement in a transaction of its own, as the owner. */
void OwnerStatement(const char *what, const char *sql, int nargs, Oid *types, Datum *values, const char *nulls) {
    (void) OwnerTransaction(what, OnFailure::kRaise, false, [&] { (void) AsOwner(sql, nargs, types, values, nulls); });
}

/*
 * Runs one bookkeeping query about the run (its id as $1) as the owner, in a transaction of
 * its own; read() takes what it needs from SPI_tuptable before the commit (anything kept
 * past it is copied out of SPI's memory).
 */
template <typename Read>
void OwnerQuery(RunShared *run, const char *sql, Read read) {
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(run->run_id)};
    (void) OwnerTransaction("read a chunk run's bookkeeping", OnFailure::kRaise, false, [&] {
        (void) AsOwner(sql, 1, types, values, nullptr);
        read();
    });
}

void SetRunStatus(RunShared *run, const char *status, const char *sqlstate, const char *message) {
    char nulls[4] = {' ', ' ', sqlstate ? ' ' : 'n', message ? ' ' : 'n'};
    Oid types[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
    Datum values[4] = {Int64GetDatum(run->run_id), CStringGetTextDatum(status),
                       sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0,
                       message ? CStringGetTextDatum(message) : (Datum) 0};
    char *sql = psprintf("UPDATE %s SET status = $2, sqlstate = $3, message = $4, "
                         "finished_at = CASE WHEN $2" PG_OP("=") "'running' THEN NULL ELSE pg_catalog.clock_timestamp() END "
                         "WHERE run_id" PG_OP("=") "$1",
                         g_runs_table);
    OwnerStatement("set a chunk run's status", sql, 4, types, values, nulls);
}

/*
 * Prepared statements, kept for the life of the worker.  Bookkeeping ones are prepared and
 * run as the tables' owner with search_path pinned; the action as the run's role, with its
 * settings.  A plan is re-planned by PostgreSQL's plan cache when what it uses changes.
 */
SPIPlanPtr g_chunk_insert_plan = nullptr;
SPIPlanPtr g_lock_plan = nullptr;
SPIPlanPtr g_done_plan = nullptr;
SPIPlanPtr g_action_plan = nullptr;

/* Prepares (first call) and runs a bookkeeping statement as the owner; SPI's result code. */
int OwnerPlan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types, Datum *values) {
    return AsOwner(sql, nargs, types, values, nullptr, plan);
}

/*
 * A key's bytes for the uniqueness check of a type without a btree ordering, in a bytea of
 * just that size.  A fixed-length value is its own bytes; a variable-length one goes
 * through its send function, whose 1 kB working buffer is freed at once.
 */
bytea *KeyBytes(Datum key, Oid send_fn, int16 typlen, bool typbyval) {
    const char *data;
    Size len;
    bytea *sent = nullptr;
    if (typbyval) {
        data = reinterpret_cast<const char *>(&key);
        len = sizeof(Datum);
    } else if (typlen > 0) {
        data = DatumGetPointer(key);
        len = static_cast<Size>(typlen);
    } else {
        sent = OidSendFunctionCall(send_fn, key);
        data = VARDATA(sent);
        len = VARSIZE(sent) - VARHDRSZ;
    }
    bytea *bytes = static_cast<bytea *>(palloc(VARHDRSZ + len));
    SET_VARSIZE(bytes, VARHDRSZ + len);
    memcpy(VARDATA(bytes), data, len);
    if (sent != nullptr) pfree(sent);
    return bytes;
}

/* The key KeyBytes made those bytes from, for an error message. */
Datum KeyFromBytes(const bytea *bytes, Oid key_type, int16 typlen, bool typbyval) {
    const char *data = VARDATA_ANY(bytes);
    Size len = VARSIZE_ANY_EXHDR(bytes);
    if (typbyval) {
        Datum key = 0;
        memcpy(&key, data, Min(len, sizeof(Datum)));
        return key;
    }
    if (typlen > 0) {
        char *copy = static_cast<char *>(palloc(static_cast<Size>(typlen)));   /* aligned */
        memcpy(copy, data, Min(len, static_cast<Size>(typlen)));
        return PointerGetDatum(copy);
    }
    Oid recv;
    Oid ioparam;
    getTypeBinaryInputInfo(key_type, &recv, &ioparam);
    StringInfoData buf;
    initStringInfo(&buf);
    appendBinaryStringInfo(&buf, data, static_cast<int>(len));
    return OidReceiveFunctionCall(recv, &buf, ioparam, -1);
}

/* Chunk numbers are int4: a key set needing more chunks is refused as its keys arrive. */
constexpr int kMaxChunks = PG_INT32_MAX;

/*
 * The keys query's receiver: takes each key straight from the executor, checks it and
 * adds it to the current chunk, which is written to the chunk table as soon as it has
 * chunk_size keys (in query order, chunk numbers 1..n), so only one chunk's keys are held.
 * The checks of the column happen when the executor starts, before the first row.
 *
 * Uniqueness is checked once the query has ended, on a copy of every key in a tuplesort
 * that spills to disk past work_mem: sorted with the type's btree ordering, equal keys are
 * adjacent, and "equal" is the type's btree comparison (1 and 1.0 are the same numeric
 * key: the action would change that row twice).  A type without a btree ordering is
 * sorted and compared on the key's bytes.  Everything happens in the caller's one
 * transaction, so a duplicate found at the end leaves no chunk behind.
 *
 * A keys query with a parallel plan runs its rows to us in parallel mode, where nothing
 * may be written: its full chunks are then kept in a tuplestore (also spilling past
 * work_mem) and written once the query has ended.
 *
 * Keys travel in binary form (send/receive functions), which no session setting can change
 * between now and a resume in another session.
 *
 * Memory: one chunk's keys, plus at most work_mem for the sort and work_mem for chunks
 * waiting for a parallel query to end.  The frames here hold no C++ objects with
 * destructors: all of it is palloc'd.
 */
struct KeyCollector {
    DestReceiver pub;          /* first: the executor sees a DestReceiver */
    MemoryContext cxt;         /* lives until the chunks are stored: SPI's procedure context */
    MemoryContext chunk_cxt;   /* the current chunk's key copies and row; reset at each flush */
    int64 run_id;
    int chunk_size;
    const char *insert_sql;
    bool started;
    Oid key_type;
    int16 typlen;
    bool typbyval;
    char typalign;
    Oid send_fn;
    Oid out_fn;
    bool by_order;             /* sorted by the type's btree ordering; else by the key's bytes */
    FmgrInfo *cmp;             /* the type's btree comparison, when by_order */
    Oid collation;
    Tuplesortstate *sort;      /* a copy of every key, for the uniqueness check */
    Datum *chunk;              /* the current chunk's keys */
    int nchunk;
    int chunk_capacity;
    uint64 nkeys;
    int nchunks;               /* chunks flushed so far */
    TupleDesc deferred_desc;   /* the chunk insert's parameters, as a row */
    Tuplestorestate *deferred; /* chunk rows flushed in parallel mode, written after the query */
};

/*
 * Stores one chunk row: the one place the chunk table is written, as its owner with
 * search_path pinned.  An SPI connection of its own, because it is called from inside the
 * keys query's executor, which holds the caller's connection; the plan is kept.
 */
void InsertChunk(const KeyCollector *c, Datum *values) {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[6] = {INT8OID, INT4OID, BYTEAOID, TEXTOID, TEXTOID, INT4OID};
    (void) OwnerPlan(&g_chunk_insert_plan, c->insert_sql, 6, types, values);
    SPI_finish();
}

/*
 * Turns the keys gathered so far into the next chunk: the typed array in binary form, the
 * first and last key to read, and the count.  Written at once, or, while a parallel keys
 * query runs (nothing may be written then), kept for when it has ended.
 */
void FlushChunk(KeyCollector *c) {
    if (c->nchunk == 0) return;
    MemoryContext old = MemoryContextSwitchTo(c->chunk_cxt);
    int chunk_no = ++c->nchunks;
    ArrayType *array = construct_array(c->chunk, c->nchunk, c->key_type, c->typlen, c->typbyval, c->typalign);
    bytea *binary = OidSendFunctionCall(F_ARRAY_SEND, PointerGetDatum(array));
    Datum values[6] = {Int64GetDatum(c->run_id), Int32GetDatum(chunk_no), PointerGetDatum(binary),
                       CStringGetTextDatum(OidOutputFunctionCall(c->out_fn, c->chunk[0])),
                       CStringGetTextDatum(OidOutputFunctionCall(c->out_fn, c->chunk[c->nchunk - 1])),
                       Int32GetDatum(c->nchunk)};
    if (IsInParallelMode()) {
        if (c->deferred == nullptr) {
            MemoryContextSwitchTo(c->cxt);
            TupleDesc desc = CreateTemplateTupleDesc(6);
            TupleDescInitEntry(desc, 1, "run_id", INT8OID, -1, 0);
            TupleDescInitEntry(desc, 2, "chunk_no", INT4OID, -1, 0);
            TupleDescInitEntry(desc, 3, "keys", BYTEAOID, -1, 0);
            TupleDescInitEntry(desc, 4, "first_key", TEXTOID, -1, 0);
            TupleDescInitEntry(desc, 5, "last_key", TEXTOID, -1, 0);
            TupleDescInitEntry(desc, 6, "key_count", INT4OID, -1, 0);
            c->deferred_desc = desc;
            c->deferred = tuplestore_begin_heap(false, false, work_mem);
            MemoryContextSwitchTo(c->chunk_cxt);
        }
        bool nulls[6] = {false, false, false, false, false, false};
        tuplestore_putvalues(c->deferred, c->deferred_desc, values, nulls);
    } else {
        InsertChunk(c, values);
    }
    MemoryContextSwitchTo(old);
    MemoryContextReset(c->chunk_cxt);
    c->nchunk = 0;
}

/* Writes the chunks a parallel keys query left waiting, in order, then the last chunk. */
void FinishChunks(KeyCollector *c) {
    if (c->deferred != nullptr) {
        TupleTableSlot *slot = MakeSingleTupleTableSlot(c->deferred_desc, &TTSOpsMinimalTuple);
        while (tuplestore_gettupleslot(c->deferred, true, false, slot)) {
            slot_getallattrs(slot);
            InsertChunk(c, slot->tts_values);
            CHECK_FOR_INTERRUPTS();
        }
        ExecDropSingleTupleTableSlot(slot);
        tuplestore_end(c->deferred);
        c->deferred = nullptr;
    }
    FlushChunk(c);
}

void CollectorStartup(DestReceiver *self, int, TupleDesc desc) {
    auto *c = reinterpret_cast<KeyCollector *>(self);
    if (c->started) elog(ERROR, "parallel_guarantee: the keys query returned more than one result");
    if (desc->natts != 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the keys query must return exactly one column, not %d", desc->natts),
                        errhint("Select only the key column, for example SELECT id FROM ...")));
    Oid key_type = TupleDescAttr(desc, 0)->atttypid;
    if (get_typtype(key_type) == TYPTYPE_PSEUDO)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("keys of type %s cannot be stored and read back", format_type_be(key_type)),
                        errhint("Select one column of a named type, for example SELECT id FROM ...; "
                                "a ROW(...) of several columns is an anonymous record.")));
    Oid array_type = get_array_type(key_type);
    if (!OidIsValid(array_type))
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("keys of type %s cannot be passed as an array", format_type_be(key_type))));
    bool varlena;
    Oid array_recv;
    Oid array_ioparam;
    /* Both error out, before anything is stored, for a type without binary I/O. */
    getTypeBinaryOutputInfo(key_type, &c->send_fn, &varlena);
    getTypeBinaryInputInfo(array_type, &array_recv, &array_ioparam);
    getTypeOutputInfo(key_type, &c->out_fn, &varlena);
    get_typlenbyvalalign(key_type, &c->typlen, &c->typbyval, &c->typalign);
    c->key_type = key_type;

    TypeCacheEntry *typentry = lookup_type_cache(key_type, TYPECACHE_LT_OPR | TYPECACHE_CMP_PROC_FINFO);
    c->by_order = OidIsValid(typentry->lt_opr) && OidIsValid(typentry->cmp_proc_finfo.fn_oid);
    c->collation = TupleDescAttr(desc, 0)->attcollation;
    if (!OidIsValid(c->collation) && type_is_collatable(key_type)) c->collation = DEFAULT_COLLATION_OID;
    MemoryContext old = MemoryContextSwitchTo(c->cxt);
    if (c->by_order) {
        c->cmp = &typentry->cmp_proc_finfo;   /* type cache entries live as long as the process */
        c->sort = tuplesort_begin_datum(key_type, typentry->lt_opr, c->collation, false, work_mem, nullptr,
                                        TUPLESORT_NONE);
    } else {
        c->sort = tuplesort_begin_datum(BYTEAOID, ByteaLessOperator, InvalidOid, false, work_mem, nullptr,
                                        TUPLESORT_NONE);
    }
    c->chunk_capacity = Min(c->chunk_size, 1024);
    c->chunk = static_cast<Datum *>(palloc(sizeof(Datum) * c->chunk_capacity));
    c->chunk_cxt = AllocSetContextCreate(c->cxt, "parallel_guarantee chunk keys", ALLOCSET_DEFAULT_SIZES);
    MemoryContextSwitchTo(old);
    c->started = true;
}

bool CollectorReceive(TupleTableSlot *slot, DestReceiver *self) {
    auto *c = reinterpret_cast<KeyCollector *>(self);
    bool isnull;
    Datum key = slot_getattr(slot, 1, &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("the keys query returned a NULL key"),
                        errhint("Filter NULLs out: WHERE key IS NOT NULL.")));
    /* This key would open chunk number nkeys / chunk_size + 1. */
    if (c->nkeys / static_cast<uint64>(c->chunk_size) >= static_cast<uint64>(kMaxChunks))
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("the keys query returned more keys than %d chunks of %d keys can hold",
                               kMaxChunks, c->chunk_size),
                        errdetail("Chunks are numbered with integers, so a run has at most %d chunks.", kMaxChunks),
                        errhint("Raise chunk_size, or split the key set between several runs.")));
    if (c->nchunk == c->chunk_capacity) {
        c->chunk_capacity = Min(c->chunk_capacity * 2, c->chunk_size);
        c->chunk = static_cast<Datum *>(repalloc(c->chunk, sizeof(Datum) * c->chunk_capacity));
    }
    /* The row's value lives only until the next row: the chunk keeps a copy, detoasted. */
    MemoryContext old = MemoryContextSwitchTo(c->chunk_cxt);
    if (c->typlen == -1)
        key = PointerGetDatum(PG_DETOAST_DATUM_COPY(key));
    else if (!c->typbyval)
        key = datumCopy(key, false, c->typlen);
    c->chunk[c->nchunk++] = key;
    /* The sort keeps a copy of its own. */
    if (c->by_order) {
        tuplesort_putdatum(c->sort, key, false);
    } else {
        bytea *bytes = KeyBytes(key, c->send_fn, c->typlen, c->typbyval);
        tuplesort_putdatum(c->sort, PointerGetDatum(bytes), false);
        pfree(bytes);
    }
    MemoryContextSwitchTo(old);
    c->nkeys++;
    if (c->nchunk == c->chunk_size) FlushChunk(c);
    return true;
}

void CollectorShutdown(DestReceiver *) {}
void CollectorDestroy(DestReceiver *) {}

/* True when two adjacent keys of the sort are the same key. */
bool SameKey(const KeyCollector *c, Datum a, Datum b) {
    if (c->by_order) return DatumGetInt32(FunctionCall2Coll(c->cmp, c->collation, a, b)) == 0;
    const bytea *x = DatumGetByteaPP(a);
    const bytea *y = DatumGetByteaPP(b);
    return VARSIZE_ANY_EXHDR(x) == VARSIZE_ANY_EXHDR(y) &&
           memcmp(VARDATA_ANY(x), VARDATA_ANY(y), VARSIZE_ANY_EXHDR(x)) == 0;
}

/* Sorts the copy of every key and raises an error at the first key found twice. */
void CheckKeysUnique(KeyCollector *c) {
    tuplesort_performsort(c->sort);
    bool sorted_byval = c->by_order && c->typbyval;
    Datum previous = 0;
    bool have_previous = false;
    Datum key;
    bool isnull;
    while (tuplesort_getdatum(c->sort, true, &key, &isnull, nullptr)) {
        if (have_previous && SameKey(c, previous, key)) {
            Datum shown = c->by_order ? key : KeyFromBytes(DatumGetByteaPP(key), c->key_type, c->typlen, c->typbyval);
            ereport(ERROR, (errcode(ERRCODE_UNIQUE_VIOLATION),
                            errmsg("the keys query returned the key %s more than once",
                                   OidOutputFunctionCall(c->out_fn, shown)),
                            errhint("Each key must appear once, or some rows would be changed twice; "
                                    "use SELECT DISTINCT.")));
        }
        /* By-reference keys come back as copies in our context. */
        if (have_previous && !sorted_byval) pfree(DatumGetPointer(previous));
        previous = key;
        have_previous = true;
        CHECK_FOR_INTERRUPTS();
    }
    if (have_previous && !sorted_byval) pfree(DatumGetPointer(previous));
    tuplesort_end(c->sort);
    c->sort = nullptr;
}

/*
 * Evaluates the keys query once, as the caller, checks it gives one column of unique keys,
 * and stores them cut into chunks, all in one transaction: either every chunk is there or
 * none is.
 */
void CreateChunks(RunShared *run, const char *keys_query) {
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    KeyCollector c;
    memset(&c, 0, sizeof c);
    c.pub.receiveSlot = CollectorReceive;
    c.pub.rStartup = CollectorStartup;
    c.pub.rShutdown = CollectorShutdown;
    c.pub.rDestroy = CollectorDestroy;
    c.pub.mydest = DestNone;
    c.cxt = CurrentMemoryContext;
    c.run_id = run->run_id;
    c.chunk_size = run->chunk_size;
    c.insert_sql = psprintf("INSERT INTO %s (run_id, chunk_no, keys, first_key, last_key, key_count, state) "
                            "VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
                            g_chunks_table);
    SPIExecuteOptions options;
    memset(&options, 0, sizeof options);
    options.read_only = true;
    options.dest = &c.pub;
    int rc = SPI_execute_extended(keys_query, &options);
    if (rc < 0 || !c.started)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the keys query must be a query that returns rows"),
                        errhint("For example: SELECT id FROM passes WHERE status = 'IN_PROGRESS'.")));
    CheckKeysUnique(&c);
    FinishChunks(&c);

    char *update = psprintf("UPDATE %s SET key_type = $2, total_keys = $3, total_chunks = $4 WHERE run_id" PG_OP("=") "$1",
                            g_runs_table);
    Oid utypes[4] = {INT8OID, OIDOID, INT8OID, INT4OID};
    Datum uvalues[4] = {Int64GetDatum(run->run_id), ObjectIdGetDatum(c.key_type),
                        Int64GetDatum(static_cast<int64>(c.nkeys)), Int32GetDatum(c.nchunks)};
    (void) AsOwner(update, 4, utypes, uvalues, nullptr);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    run->key_type = c.key_type;
    run->chunks_total = c.nchunks;
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
 * Records a failed try of a chunk, in one transaction: the chunk's row is locked and, only
 * if it is still pending, its try counted; past the retry limit it is skipped (counted
 * against max_skipped in the same transaction) or, beyond that, failed.
 */
ChunkOutcome RecordFailure(RunShared *run, int chunk_no, ErrorData *edata) {
    ChunkOutcome outcome = ChunkOutcome::kNotPending;
    int tried = 0;
    const char *state = "pending";
    (void) OwnerTransaction("count a chunk's failed try", OnFailure::kRaise, false, [&] {
        outcome = ChunkOutcome::kNotPending;
        Oid key_types[2] = {INT8OID, INT4OID};
        Datum key_values[2] = {Int64GetDatum(run->run_id), Int32GetDatum(chunk_no)};
        char *lock = psprintf("SELECT attempts FROM %s WHERE run_id" PG_OP("=") "$1 AND chunk_no" PG_OP("=") "$2 "
                              "AND state" PG_OP("=") "'pending' FOR UPDATE",
                              g_chunks_table);
        int rc = AsOwner(lock, 2, key_types, key_values, nullptr);
        if (rc == SPI_OK_SELECT && SPI_processed == 1) {
            bool isnull;
            tried = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) + 1;
            state = "pending";
            if (tried > run->max_retries) {
                /* Skip it if the run may skip one more; otherwise the run fails here. */
                char *skip = psprintf("UPDATE %s SET chunks_skipped = chunks_skipped" PG_OP("+") "1 "
                                      "WHERE run_id" PG_OP("=") "$1 AND chunks_skipped" PG_OP("<") "max_skipped "
                                      "RETURNING run_id",
                                      g_runs_table);
                rc = AsOwner(skip, 1, key_types, key_values, nullptr);
                state = (rc == SPI_OK_UPDATE_RETURNING && SPI_processed == 1) ? "skipped" : "failed";
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
            (void) AsOwner(mark, 6, types, values, nullptr);
            if (strcmp(state, "failed") == 0)
                outcome = ChunkOutcome::kFailed;
            else
                outcome = strcmp(state, "skipped") == 0 ? ChunkOutcome::kSkipped : ChunkOutcome::kRetry;
        }
    });
    if (outcome == ChunkOutcome::kSkipped || outcome == ChunkOutcome::kFailed)
        ereport(LOG_SERVER_ONLY,
                (errmsg("parallel_guarantee: chunk run %lld: chunk %d %s after %d attempt%s: %s",
                        static_cast<long long>(run->run_id), chunk_no, state, tried, tried == 1 ? "" : "s",
                        edata->message),
                 errhidestmt(true), errhidecontext(true)));
    /* Only once the failure is committed may the other workers stop. */
    if (outcome == ChunkOutcome::kFailed) pg_atomic_write_u32(&run->chunk_run_failed, 1);
    return outcome;
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
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        pgstat_report_activity(STATE_RUNNING, action);
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        Oid lock_types[2] = {INT8OID, INT4OID};
        Datum lock_values[2] = {Int64GetDatum(run->run_id), Int32GetDatum(chunk_no)};
        char *lock = psprintf("SELECT attempts, keys FROM %s WHERE run_id" PG_OP("=") "$1 AND chunk_no" PG_OP("=") "$2 "
                              "AND state" PG_OP("=") "'pending' FOR UPDATE",
                              g_chunks_table);
        int rc = OwnerPlan(&g_lock_plan, lock, 2, lock_types, lock_values);
        if (rc != SPI_OK_SELECT || SPI_processed != 1) {
            outcome = ChunkOutcome::kNotPending;
        } else {
            /* The chunks view shows it running from now until this transaction ends. */
            SetSlotChunk(run->slot_index, run->run_id, worker, chunk_no);
            bool isnull;
            Datum binary = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
            Oid array_type = get_array_type(run->key_type);
            Datum keys = TypedKeys(binary, array_type);
            if (g_action_plan == nullptr) {
                SPIPlanPtr prepared = SPI_prepare(action, 1, &array_type);
                if (prepared == nullptr)
                    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                    errmsg("the action cannot run in a background worker (%s)",
                                           SPI_result_code_string(SPI_result))));
                if (SPI_keepplan(prepared) != 0) elog(ERROR, "parallel_guarantee: could not keep the action's plan");
                g_action_plan = prepared;
            }
            rc = SPI_execute_plan(g_action_plan, &keys, nullptr, false, 0);
            if (rc < 0)
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("the action cannot run in a background worker (%s)",
                                       SPI_result_code_string(rc))));
            uint64 rows = SPI_processed;
            char *done = psprintf("UPDATE %s SET state = 'done', attempts = attempts" PG_OP("+") "1, rows = $3, "
                                  "worker_pid = $4, started_at = $5, finished_at = pg_catalog.clock_timestamp(), "
                                  "sqlstate = NULL, error = NULL WHERE run_id" PG_OP("=") "$1 AND chunk_no" PG_OP("=") "$2",
                                  g_chunks_table);
            Oid types[5] = {INT8OID, INT4OID, INT8OID, INT4OID, TIMESTAMPTZOID};
            Datum values[5] = {Int64GetDatum(run->run_id), Int32GetDatum(chunk_no),
                               Int64GetDatum(static_cast<int64>(rows)), Int32GetDatum(MyProcPid),
                               TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())};
            (void) OwnerPlan(&g_done_plan, done, 5, types, values);
            *rows_out = rows;
        }
        SPI_finish();
        PopActiveSnapshot();
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
        bool stopping = ChunkCancelRequested(run) || pg_atomic_read_u32(&run->chunk_run_failed) != 0;
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
uint32 g_said = 0;   /* the coordinator's last progress NOTICE, in chunks committed by all */

int ProcessChunks(RunShared *run, const char *action, int worker, const int *only = nullptr, int nonly = 0) {
    bool coordinator = worker == 0;
    int processed = 0;
    int next_only = 0;
    while (!ChunkCancelRequested(run) && pg_atomic_read_u32(&run->chunk_run_failed) == 0) {
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
        } while (outcome == ChunkOutcome::kRetry && !ChunkCancelRequested(run) &&
                 pg_atomic_read_u32(&run->chunk_run_failed) == 0);
        if (outcome != ChunkOutcome::kCommitted) continue;
        processed++;
        uint32 committed = pg_atomic_add_fetch_u32(&run->chunks_committed, 1);
        /* Only the coordinator can talk to the caller; it tells the progress of all workers. */
        uint32 every = static_cast<uint32>(Max(run->notice_every, 0));
        if (coordinator && every > 0 && committed / every > g_said / every) {
            g_said = committed;
            ereport(NOTICE, (errmsg("parallel_guarantee: chunk run %lld: %u of %d chunks done in this call, "
                                    "latest chunk %d changed %llu rows",
                                    static_cast<long long>(run->run_id), committed, run->chunks_total,
                                    chunk_no, static_cast<unsigned long long>(rows)),
                             errhidecontext(true)));
        }
    }
    return processed;
}

/* The numbers of the run's chunks still pending, in order, in *out (palloc'd); their count. */
int PendingChunks(RunShared *run, int **out) {
    int n = 0;
    char *sql = psprintf("SELECT chunk_no FROM %s WHERE run_id" PG_OP("=") "$1 AND state" PG_OP("=") "'pending' "
                         "ORDER BY chunk_no",
                         g_chunks_table);
    OwnerQuery(run, sql, [&] {
        *out = static_cast<int *>(MemoryContextAlloc(TopMemoryContext, sizeof(int) * Max(SPI_processed, 1)));
        for (uint64 i = 0; i < SPI_processed; i++) {
            bool isnull;
            (*out)[n++] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
        }
    });
    return n;
}

/* Counts what the chunk table says, for the result and the run's final status. */
void Tally(RunShared *run, int64 *rows, int *done, int *skipped, int *failed, int *pending) {
    char *sql = psprintf("SELECT coalesce(pg_catalog.sum(rows) FILTER (WHERE state" PG_OP("=") "'done'), 0)::" PG_INT8 ", "
                         "pg_catalog.count(*) FILTER (WHERE state" PG_OP("=") "'done')::" PG_INT4 ", "
                         "pg_catalog.count(*) FILTER (WHERE state" PG_OP("=") "'skipped')::" PG_INT4 ", "
                         "pg_catalog.count(*) FILTER (WHERE state" PG_OP("=") "'failed')::" PG_INT4 ", "
                         "pg_catalog.count(*) FILTER (WHERE state" PG_OP("=") "'pending' "
                         "                           OR state" PG_OP("=") "'running')::" PG_INT4 ", "
                         "pg_catalog.count(*)::" PG_INT4 " FROM %s WHERE run_id" PG_OP("=") "$1",
                         g_chunks_table);
    OwnerQuery(run, sql, [&] {
        bool isnull;
        HeapTuple tuple = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        *rows = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
        *done = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
        *skipped = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
        *failed = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
        *pending = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
        run->chunks_total = DatumGetInt32(SPI_getbinval(tuple, desc, 6, &isnull));
    });
}

/* Loads an earlier run for resume_chunks and puts its unfinished chunks back to pending. */
void PrepareResume(RunShared *run, char **action_out) {
    (void) OwnerTransaction("load a chunk run to resume", OnFailure::kRaise, false, [&] {
        char *sql = psprintf("SELECT action, key_type, chunk_size, max_retries, max_skipped, status, role_oid, "
                             "workers FROM %s WHERE run_id" PG_OP("=") "$1 FOR UPDATE",
                             g_runs_table);
        Oid types[1] = {INT8OID};
        Datum values[1] = {Int64GetDatum(run->run_id)};
        (void) AsOwner(sql, 1, types, values, nullptr);
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
        (void) AsOwner(reset, 1, types, values, nullptr);
        /*
         * A worker of the earlier run may still be on a chunk (its row locked): the chunk is
         * not run again, because a worker runs a chunk only after locking its row and finding
         * it still pending.
         */
        char *count = psprintf("SELECT coalesce(pg_catalog.max(chunk_no), 0)::" PG_INT4 " FROM %s "
                               "WHERE run_id" PG_OP("=") "$1", g_chunks_table);
        (void) AsOwner(count, 1, types, values, nullptr);
        run->chunks_total = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        char *running = psprintf("UPDATE %s SET status = 'running', finished_at = NULL, sqlstate = NULL, "
                                 "message = NULL WHERE run_id" PG_OP("=") "$1",
                                 g_runs_table);
        (void) AsOwner(running, 1, types, values, nullptr);
    });
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

}  // namespace

void ChunkCoordinatorMain(RunShared *run, dsm_segment *seg, const char *keys_query,
                          const char *action_text, const char *label) {
    ResolveTables(run);
    const char *volatile action = action_text;   /* reassigned inside PG_TRY for a resume */
    volatile bool owns_status = false;           /* the run's row is ours to update */
    MemoryContext outer = CurrentMemoryContext;
    char *resume_action = nullptr;

    PG_TRY();
    {
        if (run->mode == RunMode::kChunksResume) {
            PrepareResume(run, &resume_action);
            SetCurrentRoleId(run->outer_user_id, run->role_is_superuser);
            SetUserIdAndSecContext(run->current_user_id, run->sec_context);
            owns_status = true;
            pg_atomic_write_u32(&run->recorded, 1);
            action = resume_action;
        } else {
            /* Record the run first, so that a keys query that fails is in the history too. */
            char *role = nullptr;
            char *database = nullptr;
            StartTransactionCommand();
            role = GetUserNameFromId(run->current_user_id, true);
            database = get_database_name(MyDatabaseId);
            MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
            role = role ? pstrdup(role) : nullptr;
            database = database ? pstrdup(database) : nullptr;
            MemoryContextSwitchTo(old);
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
            values[6] = CStringGetTextDatum(const_cast<const char *>(action));
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
        StopHelpers(run, ChunkCancelRequested(run));
        /*
         * A helper stopped on its chunk (terminated, say) left it pending: with the helpers
         * gone, the coordinator does what is still pending, so the run is not short of it.
         */
        if (!ChunkCancelRequested(run) && pg_atomic_read_u32(&run->chunk_run_failed) == 0) {
            int *pending_chunks = nullptr;
            int npending = PendingChunks(run, &pending_chunks);
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
            SetRunStatus(run, ChunkCancelRequested(run) ? "cancelled" : "error",
                         unpack_sql_state(edata->sqlerrcode), edata->message);
        ReThrowError(edata);
    }
    PG_END_TRY();

    int64 rows = 0;
    int done = 0, skipped = 0, failed = 0, pending = 0;
    Tally(run, &rows, &done, &skipped, &failed, &pending);
    run->rows = static_cast<uint64>(rows);
    run->chunks_done = done;
    run->chunks_skipped = skipped;
    if (failed > 0) {
        run->chunk_status = ChunkStatus::kFailed;
        /* The first failed chunk's own error, for the history and the caller. */
        char *sql = psprintf("SELECT chunk_no, attempts, sqlstate, error FROM %s "
                             "WHERE run_id" PG_OP("=") "$1 AND state" PG_OP("=") "'failed' ORDER BY chunk_no LIMIT 1",
                             g_chunks_table);
        char *chunk_no = nullptr;
        char *attempts = nullptr;
        char *sqlstate = nullptr;
        char *error = nullptr;
        OwnerQuery(run, sql, [&] {
            MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
            HeapTuple tuple = SPI_tuptable->vals[0];
            TupleDesc desc = SPI_tuptable->tupdesc;
            chunk_no = pstrdup(SPI_getvalue(tuple, desc, 1));
            attempts = pstrdup(SPI_getvalue(tuple, desc, 2));
            sqlstate = pstrdup(SPI_getvalue(tuple, desc, 3));
            error = pstrdup(SPI_getvalue(tuple, desc, 4));
            MemoryContextSwitchTo(old);
        });
        char *message = psprintf("chunk %s failed after %s attempt%s: %s", chunk_no, attempts,
                                 strcmp(attempts, "1") == 0 ? "" : "s", error);
        SetRunStatus(run, "failed", sqlstate, message);
        ereport(ERROR,
                (errcode(MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4])),
                 errmsg("chunked run %lld stopped: %s", static_cast<long long>(run->run_id), message),
                 errdetail("%d chunks committed (%lld rows), %d skipped, %d not run; committed chunks "
                           "stay committed.",
                           done, static_cast<long long>(rows), skipped, pending + failed - 1),
                 errhint("Fix the cause, then continue with SELECT * FROM resume_chunks(%lld); chunks "
                         "already done are not run again.",
                         static_cast<long long>(run->run_id))));
    } else if (pending > 0) {
        run->chunk_status = ChunkStatus::kCancelled;
        SetRunStatus(run, "cancelled", "57014", "the run was cancelled; resume it with resume_chunks");
    } else {
        run->chunk_status = ChunkStatus::kDone;
        SetRunStatus(run, "done", nullptr, nullptr);
    }
}

void ChunkHelperMain(RunShared *run, const char *action, int helper) {
    ResolveTables(run);
    if (run->mode == RunMode::kChunksResume) {
        /* The coordinator loaded the action; helpers read it from the run's row. */
        char *sql = psprintf("SELECT action FROM %s WHERE run_id" PG_OP("=") "$1", g_runs_table);
        OwnerQuery(run, sql, [&] {
            MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
            action = SPI_processed == 1 ? pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))
                                        : nullptr;
            MemoryContextSwitchTo(old);
        });
        if (action == nullptr) return;
    }
    (void) ProcessChunks(run, action, helper);
}

}  // namespace pgguarantee
