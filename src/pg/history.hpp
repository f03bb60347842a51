/*
 * history.hpp: every row the extension writes about runs: guaranteed runs and their
 * attempts (history.cpp), chunked runs and their chunks (history_chunks.cpp).
 *
 * All of it is bookkeeping, written as the owner of the tables through spi_xact.hpp (the
 * caller's code never runs with that role, and cannot steer what runs as it).  Guaranteed
 * runs: each row in a transaction of its own, so the history survives the caller's rollback
 * and the run's failure; a run that cannot be recorded does not start, a later write that
 * fails is a WARNING in the server log, never the run's failure.  Databases still on the
 * first version, which had no history tables, are simply not recorded.  Chunked runs: a
 * chunk's row is locked, and marked done, in the very transaction that runs its action.
 */
#pragma once

#include "pg/shmem/run_segment.hpp"

namespace pgguarantee {

/* Finds the tables, marks runs whose worker vanished as lost, and records this run. */
void HistoryBegin(const RunShared *run, const char *statement, const char *cleanup,
                  const char *label);
/*
 * Records an attempt; the final one (final = true) is written together with the run's
 * end by HistoryFinish, in one transaction.
 */
void HistoryAttempt(const RunShared *run, int attempt, TimestampTz started, bool final);
/* Records the final status; sqlstate and message are null on success.  Purges old runs. */
void HistoryFinish(const RunShared *run, const char *status, const char *sqlstate,
                   const char *message);

/*
 * The run's worker is exiting without having recorded the run's end (terminated: SIGTERM,
 * pg_terminate_backend, a server shutdown): records what is known, the attempt in progress
 * (attempt 0: none had started) and when, on the run's row, which stays 'lost' (its worker is
 * gone) but says why.  Best effort (a WARNING if it cannot), in a transaction of its own.
 */
/*
 * Queues the NOTIFY of a run's end on parallel_guarantee.notify_channel (nothing when it is
 * empty), in the transaction that records the end, right after its UPDATE ... RETURNING
 * label, started_at, finished_at (read from SPI_tuptable); details: more JSON members.
 */
void NotifyRunEnd(int64 run_id, const char *kind, const char *status, const char *details);
void HistoryTerminated(const RunShared *run, int attempt, TimestampTz started);

/* A run's row as the caller's backend reads it (as the tables' owner, on the latest snapshot). */
struct RunRow {
    bool found;
    Oid role;
    bool running;     /* its status says running */
    bool done;        /* a chunked run's status says done */
    /* A chunked run's chunks: total, done, skipped, and the rows its done chunks changed. */
    int32 chunks_total, chunks_done, chunks_skipped;
    int64 rows_changed;
};
/*
 * Reads the row of run_id in the history of guaranteed runs, or of chunked runs, in the
 * extension's schema; read-only, with no command counter step, so it can run in the middle of
 * the caller's query (the run views call it).  tables_missing: the tables are not there.
 */
RunRow LookUpRunRow(Oid extension_namespace, bool chunked, int64 run_id, bool *tables_missing);

/* Chunked runs.  ChunkHistoryOpen first: it finds the tables (an error without them). */
void ChunkHistoryOpen(const RunShared *run);
/* Records a new chunked run as running (its own transaction). */
void ChunkHistoryRecordRun(const RunShared *run, const char *keys_query, const char *action, const char *label);
/* Sets the run's status, with the error when it failed (its own transaction). */
void ChunkHistorySetStatus(const RunShared *run, const char *status, const char *sqlstate, const char *message);
/*
 * In the keys query's transaction: stores one chunk row (values: run id, chunk number, the
 * keys' binary array, first key, last key, key count; SPI need not be connected), and, once
 * every chunk is stored, the key set's type and size (SPI connected).
 */
void ChunkHistoryStoreChunk(Datum *values);
void ChunkHistoryStoreKeySet(const RunShared *run, Oid key_type, uint64 nkeys, int nchunks);
/*
 * In the chunk's transaction (SPI connected): locks the chunk's row if it is still pending
 * and gives its keys' binary array (valid until SPI_finish), else false; marks it done.
 */
bool ChunkHistoryLockPending(const RunShared *run, int chunk_no, Datum *binary_keys);
void ChunkHistoryMarkDone(const RunShared *run, int chunk_no, uint64 rows);
/* How a failed try of a chunk was counted (ChunkHistoryCountFailure). */
enum class ChunkTry { kNotPending, kRetry, kSkipped, kFailed };
/*
 * Counts a failed try of a chunk (its own transaction, the row locked): retried up to
 * max_retries, then skipped while the run may skip one more, else failed.  *tries: the tries
 * so far.
 */
ChunkTry ChunkHistoryCountFailure(const RunShared *run, int chunk_no, const ErrorData *edata, int *tries);
/* The run's chunks still pending, in order, in *out (palloc'd in TopMemoryContext); their count. */
int ChunkHistoryPending(const RunShared *run, int **out);
/* What the chunk rows say of a run. */
struct ChunkTally {
    int64 rows;
    int done, skipped, failed, pending, total;
};
ChunkTally ChunkHistoryTally(const RunShared *run);
/* The first failed chunk: its number, tries, SQLSTATE and error (palloc'd in TopMemoryContext). */
struct ChunkFailure {
    char *chunk_no;
    char *attempts;
    char *sqlstate;
    char *error;
};
ChunkFailure ChunkHistoryFirstFailure(const RunShared *run);
/*
 * resume_chunks: loads the run (row locked), checks it may be resumed by this worker's role
 * and is not done or in progress, sets the run's role and chunk options in *run, puts its
 * unfinished chunks back to pending and the run to running; the action in *action_out.
 */
void ChunkHistoryLoadResume(RunShared *run, char **action_out);
/* A resumed run's action, for its helpers (null if the row is gone). */
char *ChunkHistoryAction(const RunShared *run);

}  // namespace pgguarantee
