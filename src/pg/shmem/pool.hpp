/*
 * pool.hpp: how busy the server's background-worker pool is, read from shared memory.
 */
#pragma once

#include "pg/pg_includes.hpp"

namespace pgguarantee {

struct WorkerPool {
    int total_slots;      /* max_worker_processes */
    int used_slots;       /* background-worker slots in use, parallel workers included */
    int active_parallel;  /* parallel workers registered and not yet gone */
    int ours;             /* slots held by this extension's own workers (runs, chunk helpers) */
};

/* Reads the pool; the same counts RegisterDynamicBackgroundWorker checks. */
WorkerPool ReadWorkerPool();

/* Looks the slot array up (once per process); false when its layout is not the one we know. */
bool PoolMirrorReady();

/*
 * How many parallel workers the process leader_pid has registered and not yet seen exit,
 * and whether the pool can take no more of them (slots all used, or max_parallel_workers
 * reached as this process counts it); marks the slot of each in slots_seen (nslots long).
 * Reads without a lock, so it may be called from a signal handler; PoolMirrorReady must
 * have been called first.  False: cannot tell.
 */
bool CountLeaderWorkers(int leader_pid, bool *slots_seen, int nslots, int *registered, bool *pool_full);

/*
 * Background workers holding a slot that are neither parallel workers nor ours: the ones
 * that stay.  Our own come and go with the runs, from registration until the postmaster
 * frees the slot, so they are told apart by their library, not by what our run slots say.
 */
inline int OtherBackgroundWorkers(const WorkerPool &pool) {
    return pool.used_slots - pool.active_parallel - pool.ours;
}

}  // namespace pgguarantee
