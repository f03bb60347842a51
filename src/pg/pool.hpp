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
};

/* Reads the pool; the same counts RegisterDynamicBackgroundWorker checks. */
WorkerPool ReadWorkerPool();

/* Background workers holding a slot that are not parallel workers. */
inline int OtherBackgroundWorkers(const WorkerPool &pool) {
    return pool.used_slots - pool.active_parallel;
}

}  // namespace pgguarantee
