/*
 * run_segment.cpp: see run_segment.hpp.
 */
#include "pg/shmem/run_segment.hpp"

#include "pg/shmem/run_slots.hpp"

#include <cstring>

namespace pgguarantee {

namespace {

constexpr uint64 kRunMagic = 0x50475541524e5431ULL; /* "PGUARNT1" */
enum TocKey : uint64 { kTocRun = 1, kTocStatement, kTocCleanup, kTocSettings, kTocLibraries, kTocQueue, kTocLabel };
constexpr int kTocKeys = 7;
constexpr Size kQueueSize = 64 * 1024;

char *CopyText(shm_toc *toc, TocKey key, const char *text) {
    Size len = strlen(text) + 1;
    auto *copy = static_cast<char *>(shm_toc_allocate(toc, len));
    memcpy(copy, text, len);
    shm_toc_insert(toc, key, copy);
    return copy;
}

}  // namespace

/*
 * The caller's loaded libraries, as SerializeLibraryState wrote them (names, each ended by a
 * NUL, then an empty name), without the JIT provider: a session that once compiled a query
 * has llvmjit loaded, and loading it again in the worker cost ~20 ms of every call.  The
 * worker loads it by itself the first time its statement is compiled, as any backend does.
 */
static void DropJitProvider(char *libraries) {
    char *read = libraries, *write = libraries;
    while (*read != '\0') {
        size_t len = strlen(read) + 1;
        const char *base = strrchr(read, '/');
        base = base ? base + 1 : read;
        if (strncmp(base, "llvmjit", 7) != 0) {
            memmove(write, read, len);
            write += len;
        }
        read += len;
    }
    *write = '\0';
}

RunSegment CreateRunSegment(const char *statement, const char *cleanup, const char *label) {
    Size settings_len = EstimateGUCStateSpace();
    Size libraries_len = EstimateLibraryStateSpace();
    shm_toc_estimator estimator;
    shm_toc_initialize_estimator(&estimator);
    shm_toc_estimate_chunk(&estimator, sizeof(RunShared));
    shm_toc_estimate_chunk(&estimator, strlen(statement) + 1);
    shm_toc_estimate_chunk(&estimator, strlen(cleanup) + 1);
    shm_toc_estimate_chunk(&estimator, strlen(label) + 1);
    shm_toc_estimate_chunk(&estimator, settings_len);
    shm_toc_estimate_chunk(&estimator, libraries_len);
    shm_toc_estimate_chunk(&estimator, kQueueSize);
    shm_toc_estimate_keys(&estimator, kTocKeys);
    Size segsize = shm_toc_estimate(&estimator);

    RunSegment s{};
    s.seg = dsm_create(segsize, 0);
    shm_toc *toc = shm_toc_create(kRunMagic, dsm_segment_address(s.seg), segsize);
    s.run = static_cast<RunShared *>(shm_toc_allocate(toc, sizeof(RunShared)));
    memset(static_cast<void *>(s.run), 0, sizeof(RunShared));
    pg_atomic_init_u32(&s.run->chunk_run_failed, 0);
    pg_atomic_init_u32(&s.run->next_chunk, 0);
    pg_atomic_init_u32(&s.run->chunks_committed, 0);
    pg_atomic_init_u32(&s.run->cancel_requested, 0);
    pg_atomic_init_u32(&s.run->worker_pid, 0);
    pg_atomic_init_u32(&s.run->recorded, 0);
    shm_toc_insert(toc, kTocRun, s.run);
    s.statement = CopyText(toc, kTocStatement, statement);
    s.cleanup = CopyText(toc, kTocCleanup, cleanup);
    s.label = CopyText(toc, kTocLabel, label);
    s.settings = static_cast<char *>(shm_toc_allocate(toc, settings_len));
    SerializeGUCState(settings_len, s.settings);
    shm_toc_insert(toc, kTocSettings, s.settings);
    s.libraries = static_cast<char *>(shm_toc_allocate(toc, libraries_len));
    SerializeLibraryState(libraries_len, s.libraries);
    DropJitProvider(s.libraries);
    shm_toc_insert(toc, kTocLibraries, s.libraries);
    s.queue = shm_mq_create(shm_toc_allocate(toc, kQueueSize), kQueueSize);
    shm_toc_insert(toc, kTocQueue, s.queue);
    return s;
}

RunSegment AttachRunSegment(dsm_handle handle) {
    RunSegment s{};
    s.seg = dsm_attach(handle);
    if (s.seg == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("parallel_guarantee: the caller went away before the worker started")));
    dsm_pin_mapping(s.seg);
    shm_toc *toc = shm_toc_attach(kRunMagic, dsm_segment_address(s.seg));
    if (toc == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("parallel_guarantee: bad shared memory segment for the worker")));
    s.run = static_cast<RunShared *>(shm_toc_lookup(toc, kTocRun, false));
    s.statement = static_cast<const char *>(shm_toc_lookup(toc, kTocStatement, false));
    s.cleanup = static_cast<const char *>(shm_toc_lookup(toc, kTocCleanup, false));
    s.label = static_cast<const char *>(shm_toc_lookup(toc, kTocLabel, false));
    s.settings = static_cast<char *>(shm_toc_lookup(toc, kTocSettings, false));
    s.libraries = static_cast<char *>(shm_toc_lookup(toc, kTocLibraries, false));
    s.queue = static_cast<shm_mq *>(shm_toc_lookup(toc, kTocQueue, false));
    return s;
}

bool RunCancelRequested(const RunShared *run) {
    return pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&run->cancel_requested)) != 0 ||
           SlotCancelRequested(run->slot_index, run->run_id);
}

bool RegisterRunWorker(dsm_segment *seg, const char *name, int chunk_helper,
                       BackgroundWorkerHandle **handle) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_ConsistentState;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    strlcpy(worker.bgw_library_name, kLibraryName, BGW_MAXLEN);
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "parallel_guarantee_worker_main");
    strlcpy(worker.bgw_name, name, BGW_MAXLEN);
    strlcpy(worker.bgw_type, kWorkerType, BGW_MAXLEN);
    worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
    worker.bgw_notify_pid = MyProcPid;
    worker.bgw_extra[0] = static_cast<char>(chunk_helper);
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    bool registered = RegisterDynamicBackgroundWorker(&worker, handle);
    MemoryContextSwitchTo(old);
    return registered;
}

}  // namespace pgguarantee
