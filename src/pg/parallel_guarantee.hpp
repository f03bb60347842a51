/*
 * parallel_guarantee.hpp: the words of this extension, and what every PostgreSQL-facing file
 * of it shares.
 *
 * Glossary
 *   run          One call of run_with_parallel_guarantee / submit_parallel_guarantee (a
 *                guaranteed run) or of run_in_chunks / submit_chunks (a chunked run), from
 *                the call until its worker has exited.  Identified by a run id, unique across
 *                restarts (a per-database sequence); a resume_chunks call continues a chunked
 *                run under its id.
 *   attempt      One execution of a guaranteed run's statement, in a transaction of its own:
 *                committed when every Gather launch met the target (or, on the last attempt,
 *                the minimum), else abandoned and rolled back, and the cleanup run.
 *   worker       The dynamic background worker that runs a run, as the caller, with the
 *                caller's settings (worker/run_worker.cpp).
 *   slot         A run's entry in the main shared memory (shmem/run_slots.hpp): what the
 *                views show, how the queue orders runs, where cancels are asked for and
 *                where signals find their process.  One per run in progress.
 *   segment      A run's dynamic shared memory segment (shmem/run_segment.hpp): the caller's
 *                identity, settings and arguments, control flags, the result, and the queue
 *                the worker sends its NOTICEs and error through.
 *   queue        The runs waiting for free parallel workers, first come, first served, a
 *                higher priority first; only the first may start.
 *   reservation  With parallel_guarantee.reserve_slots, what ordinary sessions' parallel
 *                queries leave free for the first run in the queue.
 *   chunk        A slice of a chunked run's key set, processed by the action in a transaction
 *                of its own and recorded as done in the same transaction.
 *   helper       A further worker of a chunked run; it shares the run's segment and slot and
 *                takes chunks from the same dispenser.  The run's own worker is then the
 *                coordinator: it reads the keys, starts the helpers and accounts for the run.
 *   bookkeeping  The rows the extension writes about runs (history, chunks), as the owner of
 *                its tables, through spi_xact.hpp.
 */
#pragma once

#include "pg/errors.hpp"
#include "pg/pg_includes.hpp"

namespace pgguarantee {

/* How our background workers are registered, and so recognised in the worker pool. */
constexpr const char *kLibraryName = "parallel_guarantee";
constexpr const char *kWorkerType = "parallel_guarantee worker";

/* A run's label, with its terminating zero. */
constexpr int kLabelSize = 64;

/* A chunked run's workers at most: its coordinator and helpers (run_in_chunks' workers). */
constexpr int kMaxChunkWorkers = 64;

/* Statement kinds the worker treats differently. */
enum class StatementKind : int32 {
    kQuery = 0,     /* SELECT, CREATE TABLE AS, SELECT INTO, REFRESH MATERIALIZED VIEW */
    kModifying,     /* INSERT/UPDATE/DELETE/MERGE: never parallel on PostgreSQL <= 17 */
    kOther,         /* DO, CALL, EXPLAIN, COPY (query): they may run queries */
    kUtility,       /* other utility statements: they run no query, so no Gather */
    kMaintenance,   /* CREATE INDEX, REINDEX INDEX|TABLE: a parallel index build, no Gather */
    kVacuum,        /* VACUUM of named tables: parallel index passes, run at the top level */
    kConcurrentBuild, /* CREATE INDEX / REINDEX CONCURRENTLY: a build at the top level, submitted only */
};

/* What a worker does. */
enum class RunMode : int32 {
    kGuarantee = 0,    /* run_with_parallel_guarantee / submit_parallel_guarantee */
    kChunks,           /* run_in_chunks: evaluate the keys, then process chunks */
    kChunksResume,     /* resume_chunks: process the unfinished chunks of an earlier run */
};

/* The outcome of a chunked run. */
enum class ChunkStatus : int32 { kRunning = 0, kDone, kFailed, kCancelled };

/* True in the background worker that runs a guaranteed statement (and in chunk workers). */
extern bool g_in_guarantee_worker;

/*
 * The statement runs no query (a utility statement), so no Gather can give it workers:
 * 53G04, raised by the caller's checks and, for what they cannot see, by the worker.
 */
void RaiseRunsNoQuery();

/*
 * How much of a run's progress goes to the server log (parallel_guarantee.log_attempts):
 * nothing, the problems (abandoned, degraded and failed attempts, a wait that max_wait
 * ended), or every line the caller is told.
 */
enum class LogAttempts { kNone = 0, kProblems = 1, kAll = 2 };

/*
 * Says something about a run: a NOTICE for the caller, and a server log line as
 * parallel_guarantee.log_attempts asks (problem: the line tells of a problem).
 */
void SayProgress(const char *message, bool problem = false);

}  // namespace pgguarantee
