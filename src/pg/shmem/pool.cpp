/*
 * pool.cpp: reading the background-worker pool.
 *
 * PostgreSQL keeps its background-worker slots, and the counts of parallel workers
 * registered and terminated, in the shared struct "Background Worker Data", whose layout
 * is private to bgworker.c but has been the same since PostgreSQL 10.  We look the struct
 * up by name and use it only if its size matches our mirror of the layout exactly;
 * otherwise we fall back to counting live processes by their background-worker type.
 * Reads take BackgroundWorkerLock in shared mode, as PostgreSQL's own readers do.
 */
#include "pg/shmem/pool.hpp"

extern "C" {
#include "postmaster/bgworker_internals.h"
}

#include <cstring>

#include "pg/parallel_guarantee.hpp"

namespace pgguarantee {

namespace {

struct MirrorSlot {
    bool in_use;
    bool terminate;
    pid_t pid;
    uint64 generation;
    BackgroundWorker worker;
};

struct MirrorArray {
    int total_slots;
    uint32 parallel_register_count;
    uint32 parallel_terminate_count;
    MirrorSlot slot[FLEXIBLE_ARRAY_MEMBER];
};

MirrorArray *g_array = nullptr;
bool g_looked_up = false;

MirrorArray *LookUpArray() {
    if (g_looked_up) return g_array;
    g_looked_up = true;
    Size mirror = add_size(offsetof(MirrorArray, slot), mul_size(max_worker_processes, sizeof(MirrorSlot)));
    if (mirror != BackgroundWorkerShmemSize()) return nullptr;
    bool found = false;
    void *ptr = ShmemInitStruct("Background Worker Data", mirror, &found);
    if (found && static_cast<MirrorArray *>(ptr)->total_slots == max_worker_processes)
        g_array = static_cast<MirrorArray *>(ptr);
    return g_array;
}

/* Fallback: live processes that hold a background-worker slot, by type. */
WorkerPool CountByProcess() {
    WorkerPool pool{max_worker_processes, 0, 0, 0};
    for (uint32 i = 0; i < ProcGlobal->allProcCount; i++) {
        int pid = ProcGlobal->allProcs[i].pid;
        if (pid == 0) continue;
        /* A PGPROC keeps its last owner's pid: only pids a slot holds now count. */
        const char *type = GetBackgroundWorkerTypeByPid(pid);
        if (type == nullptr) continue;
        pool.used_slots++;
        if (strcmp(type, "parallel worker") == 0) pool.active_parallel++;
        else if (strcmp(type, kWorkerType) == 0) pool.ours++;
    }
    return pool;
}

}  // namespace

bool PoolMirrorReady() {
    return LookUpArray() != nullptr;
}

bool CountLeaderWorkers(int leader_pid, bool *slots_seen, int nslots, int *registered, bool *pool_full) {
    MirrorArray *array = g_array;   /* looked up by PoolMirrorReady, never here */
    if (array == nullptr) return false;
    int used = 0, mine = 0;
    for (int i = 0; i < array->total_slots; i++) {
        const volatile MirrorSlot &slot = array->slot[i];
        if (!slot.in_use) continue;
        used++;
        /* Registered (pid InvalidPid) or running; 0 once the worker has exited. */
        if (slot.worker.bgw_notify_pid == leader_pid && slot.pid != 0 &&
            strcmp(const_cast<const char *>(slot.worker.bgw_function_name), "ParallelWorkerMain") == 0) {
            mine++;
            if (i < nslots) slots_seen[i] = true;
        }
    }
    int active = static_cast<int>(array->parallel_register_count - array->parallel_terminate_count);
    *registered = mine;
    *pool_full = used >= array->total_slots || active >= max_parallel_workers;
    return true;
}

WorkerPool ReadWorkerPool() {
    MirrorArray *array = LookUpArray();
    if (array == nullptr) return CountByProcess();
    WorkerPool pool{array->total_slots, 0, 0, 0};
    LWLockAcquire(BackgroundWorkerLock, LW_SHARED);
    for (int i = 0; i < array->total_slots; i++) {
        const MirrorSlot &slot = array->slot[i];
        if (!slot.in_use) continue;
        pool.used_slots++;
        if (strcmp(slot.worker.bgw_library_name, kLibraryName) == 0) pool.ours++;
    }
    pool.active_parallel =
        static_cast<int>(array->parallel_register_count - array->parallel_terminate_count);
    LWLockRelease(BackgroundWorkerLock);
    return pool;
}

}  // namespace pgguarantee
