/* downgrades.cpp: see downgrades.hpp. */
#include "pg/shmem/downgrades.hpp"

#include "core/downgrade.hpp"
#include "pg/api/views.hpp"
#include "pg/settings.hpp"

#include <algorithm>
#include <cstring>

extern "C" {
#include "utils/hsearch.h"
#include "utils/tuplestore.h"
}

namespace pgguarantee {

namespace {

struct DowngradeKey {
    Oid database_id;
    Oid user_id;
    uint64 query_id;
};

struct DowngradeCounts {
    int64 launches;
    int64 workers_planned;
    int64 workers_launched;
    int64 buckets[kDowngradeBuckets];
    int32 worst_shortfall;       /* per cent, 0..100 */
    TimestampTz first_launch;
    TimestampTz last_launch;
    TimestampTz last_downgrade;  /* 0: never */
};

struct DowngradeEntry {
    DowngradeKey key;            /* the hash key: first */
    slock_t mutex;               /* guards counts */
    DowngradeCounts counts;
};

struct DowngradeShared {
    LWLock *lock;                /* shared: find and count; exclusive: add, evict, reset */
    int max_entries;
    int64 evicted;
    TimestampTz reset_at;
};

DowngradeShared *g_state = nullptr;
HTAB *g_table = nullptr;

constexpr const char *kStatsFile = "pg_stat/parallel_guarantee_downgrades.stat";
constexpr uint32 kStatsMagic = 0x50474431;   /* "PGD1" */

Size SharedSize() {
    return add_size(MAXALIGN(sizeof(DowngradeShared)),
                    hash_estimate_size(g_max_downgrade_entries, sizeof(DowngradeEntry)));
}

/* Under the exclusive lock: removes the least-used entries (fewest launches, then oldest). */
void EvictLeastUsed() {
    long n = hash_get_num_entries(g_table);
    if (n <= 0) return;
    auto **all = static_cast<DowngradeEntry **>(palloc(sizeof(DowngradeEntry *) * n));
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, g_table);
    long i = 0;
    DowngradeEntry *e;
    while ((e = static_cast<DowngradeEntry *>(hash_seq_search(&seq))) != nullptr)
        if (i < n) all[i++] = e;
        else {
            hash_seq_term(&seq);
            break;
        }
    std::sort(all, all + i, [](const DowngradeEntry *a, const DowngradeEntry *b) {
        if (a->counts.launches != b->counts.launches) return a->counts.launches < b->counts.launches;
        return a->counts.last_launch < b->counts.last_launch;
    });
    long victims = std::min<long>(i, static_cast<long>(EntriesToEvict(i)));
    for (long v = 0; v < victims; v++) (void) hash_search(g_table, &all[v]->key, HASH_REMOVE, nullptr);
    g_state->evicted += victims;
    pfree(all);
}

/* Under the exclusive lock: the entry of key, made (evicting first when full) if missing. */
DowngradeEntry *EnterEntry(const DowngradeKey &key, const DowngradeCounts *counts) {
    bool found;
    auto *e = static_cast<DowngradeEntry *>(hash_search(g_table, &key, HASH_FIND, &found));
    if (e != nullptr) return e;
    if (hash_get_num_entries(g_table) >= g_state->max_entries) EvictLeastUsed();
    e = static_cast<DowngradeEntry *>(hash_search(g_table, &key, HASH_ENTER_NULL, &found));
    if (e == nullptr) return nullptr;
    if (!found) {
        SpinLockInit(&e->mutex);
        if (counts != nullptr) e->counts = *counts;
        else memset(&e->counts, 0, sizeof(e->counts));
    }
    return e;
}

/* At a clean shutdown of the postmaster: the table to kStatsFile (a crash writes nothing). */
void SaveDowngrades(int code, Datum) {
    if (code != 0 || g_state == nullptr || g_table == nullptr) return;
    char temp[MAXPGPATH];
    snprintf(temp, sizeof(temp), "%s.tmp", kStatsFile);
    FILE *file = AllocateFile(temp, PG_BINARY_W);
    if (file == nullptr) return;
    int32 n = static_cast<int32>(hash_get_num_entries(g_table));
    bool ok = fwrite(&kStatsMagic, sizeof(kStatsMagic), 1, file) == 1 &&
              fwrite(&n, sizeof(n), 1, file) == 1 &&
              fwrite(&g_state->evicted, sizeof(g_state->evicted), 1, file) == 1 &&
              fwrite(&g_state->reset_at, sizeof(g_state->reset_at), 1, file) == 1;
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, g_table);
    DowngradeEntry *e;
    while ((e = static_cast<DowngradeEntry *>(hash_seq_search(&seq))) != nullptr)
        if (ok) ok = fwrite(&e->key, sizeof(e->key), 1, file) == 1 && fwrite(&e->counts, sizeof(e->counts), 1, file) == 1;
    if (FreeFile(file) != 0) ok = false;
    if (ok) (void) durable_rename(temp, kStatsFile, LOG);
    else (void) unlink(temp);
}

/* At start: the table saved by the last clean shutdown, if any; the file is then removed. */
void LoadDowngrades() {
    FILE *file = AllocateFile(kStatsFile, PG_BINARY_R);
    if (file == nullptr) return;
    uint32 magic = 0;
    int32 n = 0;
    int64 evicted = 0;
    TimestampTz reset_at = 0;
    if (fread(&magic, sizeof(magic), 1, file) == 1 && magic == kStatsMagic &&
        fread(&n, sizeof(n), 1, file) == 1 && fread(&evicted, sizeof(evicted), 1, file) == 1 &&
        fread(&reset_at, sizeof(reset_at), 1, file) == 1) {
        g_state->evicted = evicted;
        g_state->reset_at = reset_at;
        for (int32 i = 0; i < n; i++) {
            DowngradeKey key;
            DowngradeCounts counts;
            if (fread(&key, sizeof(key), 1, file) != 1 || fread(&counts, sizeof(counts), 1, file) != 1) break;
            if (EnterEntry(key, &counts) == nullptr) break;
        }
    }
    FreeFile(file);
    (void) unlink(kStatsFile);
}

}  // namespace

void RequestDowngrades() {
    RequestAddinShmemSpace(SharedSize());
    RequestNamedLWLockTranche("parallel_guarantee downgrades", 1);
}

void InitDowngrades() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    g_state = static_cast<DowngradeShared *>(ShmemInitStruct("parallel_guarantee downgrades state",
                                                             sizeof(DowngradeShared), &found));
    if (!found) {
        g_state->lock = &(GetNamedLWLockTranche("parallel_guarantee downgrades"))->lock;
        g_state->max_entries = g_max_downgrade_entries;
        g_state->evicted = 0;
        g_state->reset_at = GetCurrentTimestamp();
    }
    HASHCTL info;
    memset(&info, 0, sizeof(info));
    info.keysize = sizeof(DowngradeKey);
    info.entrysize = sizeof(DowngradeEntry);
    g_table = ShmemInitHash("parallel_guarantee downgrades", g_max_downgrade_entries, g_max_downgrade_entries,
                            &info, HASH_ELEM | HASH_BLOBS);
    LWLockRelease(AddinShmemInitLock);
    /* In the postmaster only: load what the last clean shutdown saved, save at the next. */
    if (!IsUnderPostmaster) {
        if (!found) LoadDowngrades();
        on_shmem_exit(SaveDowngrades, 0);
    }
}

void RecordLaunch(uint64 query_id, int planned, int launched) {
    if (g_state == nullptr || g_table == nullptr || !g_track_downgrades || planned <= 0) return;
    DowngradeKey key;
    memset(&key, 0, sizeof(key));
    key.database_id = MyDatabaseId;
    key.user_id = GetUserId();
    key.query_id = query_id;
    DowngradeBucket bucket = ClassifyLaunch(planned, launched);
    int shortfall = ShortfallPercent(planned, launched);
    TimestampTz now = GetCurrentTimestamp();

    LWLockAcquire(g_state->lock, LW_SHARED);
    auto *e = static_cast<DowngradeEntry *>(hash_search(g_table, &key, HASH_FIND, nullptr));
    if (e == nullptr) {
        LWLockRelease(g_state->lock);
        LWLockAcquire(g_state->lock, LW_EXCLUSIVE);
        e = EnterEntry(key, nullptr);
        if (e == nullptr) {
            LWLockRelease(g_state->lock);
            return;
        }
    }
    SpinLockAcquire(&e->mutex);
    DowngradeCounts &c = e->counts;
    if (c.launches == 0) c.first_launch = now;
    c.launches++;
    c.workers_planned += planned;
    c.workers_launched += Max(launched, 0);
    c.buckets[static_cast<int>(bucket)]++;
    c.last_launch = now;
    if (bucket != DowngradeBucket::kNotDowngraded) {
        c.last_downgrade = now;
        c.worst_shortfall = Max(c.worst_shortfall, shortfall);
    }
    SpinLockRelease(&e->mutex);
    LWLockRelease(g_state->lock);
}

Datum DowngradesRows(FunctionCallInfo fcinfo) {
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    if (rsinfo == nullptr || !IsA(rsinfo, ReturnSetInfo) || (rsinfo->allowedModes & SFRM_Materialize) == 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("parallel_guarantee_downgrades must be called in FROM")));
    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("return type must be a row type")));
    MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
    Tuplestorestate *store = tuplestore_begin_heap(true, false, work_mem);
    rsinfo->returnMode = SFRM_Materialize;
    rsinfo->setResult = store;
    rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
    MemoryContextSwitchTo(old);
    if (g_state == nullptr || g_table == nullptr) return (Datum) 0;

    /* Copied under the lock, formed after it: no catalog look-up while it is held. */
    LWLockAcquire(g_state->lock, LW_SHARED);
    long n = hash_get_num_entries(g_table);
    auto *rows = static_cast<DowngradeEntry *>(palloc(sizeof(DowngradeEntry) * Max(n, 1)));
    long count = 0;
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, g_table);
    DowngradeEntry *e;
    while ((e = static_cast<DowngradeEntry *>(hash_seq_search(&seq))) != nullptr) {
        if (count >= n) {
            hash_seq_term(&seq);
            break;
        }
        rows[count].key = e->key;
        SpinLockAcquire(&e->mutex);
        rows[count].counts = e->counts;
        SpinLockRelease(&e->mutex);
        count++;
    }
    LWLockRelease(g_state->lock);

    for (long i = 0; i < count; i++) {
        const DowngradeEntry &r = rows[i];
        if (!CanSee(r.key.user_id)) continue;
        Datum values[16];
        bool nulls[16] = {};
        values[0] = ObjectIdGetDatum(r.key.database_id);
        values[1] = ObjectIdGetDatum(r.key.user_id);
        values[2] = Int64GetDatum(static_cast<int64>(r.key.query_id));
        nulls[2] = r.key.query_id == 0;
        values[3] = Int64GetDatum(r.counts.launches);
        values[4] = Int64GetDatum(r.counts.workers_planned);
        values[5] = Int64GetDatum(r.counts.workers_launched);
        for (int b = 0; b < kDowngradeBuckets; b++) values[6 + b] = Int64GetDatum(r.counts.buckets[b]);
        values[12] = Int32GetDatum(r.counts.worst_shortfall);
        values[13] = TimestampTzGetDatum(r.counts.first_launch);
        values[14] = TimestampTzGetDatum(r.counts.last_launch);
        values[15] = TimestampTzGetDatum(r.counts.last_downgrade);
        nulls[15] = r.counts.last_downgrade == 0;
        tuplestore_putvalues(store, tupdesc, values, nulls);
    }
    return (Datum) 0;
}

Datum DowngradesReset(FunctionCallInfo) {
    if (g_state == nullptr || g_table == nullptr) PG_RETURN_INT64(0);
    LWLockAcquire(g_state->lock, LW_EXCLUSIVE);
    int64 removed = 0;
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, g_table);
    DowngradeEntry *e;
    while ((e = static_cast<DowngradeEntry *>(hash_seq_search(&seq))) != nullptr) {
        (void) hash_search(g_table, &e->key, HASH_REMOVE, nullptr);
        removed++;
    }
    g_state->evicted = 0;
    g_state->reset_at = GetCurrentTimestamp();
    LWLockRelease(g_state->lock);
    PG_RETURN_INT64(removed);
}

Datum DowngradesInfo(FunctionCallInfo fcinfo) {
    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("return type must be a row type")));
    Datum values[4];
    bool nulls[4] = {};
    if (g_state == nullptr || g_table == nullptr) {
        for (bool &null : nulls) null = true;
    } else {
        LWLockAcquire(g_state->lock, LW_SHARED);
        values[0] = Int64GetDatum(hash_get_num_entries(g_table));
        values[1] = Int32GetDatum(g_state->max_entries);
        values[2] = Int64GetDatum(g_state->evicted);
        values[3] = TimestampTzGetDatum(g_state->reset_at);
        LWLockRelease(g_state->lock);
    }
    return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

}  // namespace pgguarantee
