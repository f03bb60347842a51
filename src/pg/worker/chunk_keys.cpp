/*
 * chunk_keys.cpp: a chunked run's key set: the keys query evaluated once, as the caller, its
 * keys checked (one column, no NULL, each key once) and stored cut into chunks.
 */
#include "pg/history.hpp"
#include "pg/spi_xact.hpp"
#include "pg/worker/chunks.hpp"

extern "C" {
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/tuplesort.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
}

namespace pgguarantee {

namespace {

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
        ChunkHistoryStoreChunk(values);
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
            ChunkHistoryStoreChunk(slot->tts_values);
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
    while (TuplesortGetDatum(c->sort, true, &key, &isnull, nullptr)) {
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

}  // namespace

/*
 * Evaluates the keys query once, as the caller, checks it gives one column of unique keys,
 * and stores them cut into chunks, all in one transaction: either every chunk is there or
 * none is.
 */
void CreateChunks(RunShared *run, const char *keys_query) {
    BeginSpiTransaction(nullptr);
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

    ChunkHistoryStoreKeySet(run, c.key_type, c.nkeys, c.nchunks);
    EndSpiStatement();
    CommitTransactionCommand();
    run->key_type = c.key_type;
    run->chunks_total = c.nchunks;
}

}  // namespace pgguarantee
