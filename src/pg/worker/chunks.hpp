/*
 * chunks.hpp: chunked batch steps (run_in_chunks, resume_chunks), worker side.
 *
 * The coordinator worker evaluates the keys query once, as the caller, and stores the key
 * set cut into chunks in parallel_guarantee_chunk_history (each chunk as soon as its keys
 * have arrived, so one chunk's keys are held at a time; uniqueness is checked on a sorted
 * copy that spills to disk past work_mem), then starts its helper workers.
 * All of them take chunk numbers from a counter in
 * the run's shared memory (each number handed out once) and run each chunk in a
 * transaction of its own: lock the chunk's row if it is still pending, run the action, mark
 * the chunk done, commit.  A chunk is done exactly when its action committed.  A failing
 * chunk rolls back alone, is retried up to max_retries, then skipped up to max_skipped, then
 * the run stops as failed.  The chunk each worker is on is published in the run's slot, for
 * the chunks view.  Bookkeeping runs as the tables' owner with search_path pinned; the keys
 * query and the action run as the caller.
 */
#pragma once

#include "pg/shmem/run_segment.hpp"

namespace pgguarantee {

/*
 * Evaluates the keys query once, as the caller, checks it gives one column of unique keys,
 * and stores them cut into chunks, all in one transaction: either every chunk is there or
 * none is (chunk_keys.cpp).
 */
void CreateChunks(RunShared *run, const char *keys_query);

/* The run's own worker: records the run (or loads it to resume), the keys, the chunks, the end. */
void ChunkCoordinatorMain(RunShared *run, dsm_segment *seg, const char *keys_query,
                          const char *action, const char *label);
/* A helper (1 and up): takes chunks from the run's dispenser until none is left. */
void ChunkHelperMain(RunShared *run, const char *action, int helper);

}  // namespace pgguarantee
