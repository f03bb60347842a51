/*
 * chunks.hpp: chunked batch steps (run_in_chunks, resume_chunks), worker side.
 *
 * The coordinator worker evaluates the keys query once, as the caller, and stores the key
 * set cut into chunks in parallel_guarantee_chunk_history; then it and its helper workers
 * claim pending chunks one at a time (FOR UPDATE SKIP LOCKED, so each chunk is claimed
 * exactly once) and run the action for each in a transaction of its own, marking the chunk
 * done in that same transaction: a chunk is done exactly when its action committed.  A
 * failing chunk rolls back alone, is retried up to max_retries, then skipped up to
 * max_skipped, then the run stops as failed.  Bookkeeping runs as the tables' owner with
 * search_path pinned; the keys query and the action run as the caller.
 */
#pragma once

#include "pg/shared.hpp"

namespace pgguarantee {

void ChunkCoordinatorMain(RunShared *run, dsm_segment *seg, const char *keys_query,
                          const char *action, const char *label);
void ChunkHelperMain(RunShared *run, const char *action);

}  // namespace pgguarantee
