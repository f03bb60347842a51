/*
 * shared.hpp: state shared between the caller, the worker that runs the statement and
 * anyone who looks at runs in progress.
 *
 * Two kinds of shared memory:
 *  - SharedState, in the main shared memory (needs shared_preload_libraries): one RunSlot
 *    per run in progress, for the live view and for the executing worker to publish the
 *    workers each Gather launched.  Locking: slots are allocated, released and written
 *    under the named LWLock in exclusive mode, and read under it in shared mode.  A slot
 *    is identified by (index, run_id), so a stale index never touches a reused slot.
 *  - RunShared, in a DSM segment per run, set up by the caller before the worker starts:
 *    the caller's identity and options (written once before the worker exists), control
 *    flags (atomics) and the result, written by the worker before it detaches; the caller
 *    reads the result only after the worker has detached from the message queue.
 */
#pragma once

#include "core/policy.hpp"
#include "pg/errors.hpp"
#include "pg/pg_includes.hpp"

#include "port/atomics.h"

namespace pgguarantee {

enum class SlotState : int32 {
    kFree = 0,
    kStarting,      /* registered, worker not yet running the statement */
    kWaitingForSlots, /* queued until enough worker slots are free */
    kRunning,       /* an attempt is running */
    kWaitingRetry,  /* between attempts */
    kCleaningUp,    /* running the cleanup statement */
    kFinishing,
};

const char *SlotStateName(SlotState state);

constexpr int kLabelSize = 64;

/* How our background workers are registered, and so recognised in the worker pool. */
constexpr const char *kLibraryName = "parallel_guarantee";
constexpr const char *kWorkerType = "parallel_guarantee worker";

/* A chunked run's workers at most: its coordinator and helpers (run_in_chunks' workers). */
constexpr int kMaxChunkWorkers = 64;

struct RunSlot {
    int64 run_id;           /* 0: free */
    int32 caller_pid;
    int32 worker_pid;
    Oid database_id;
    Oid user_id;            /* the role the statement runs as */
    SlotState state;
    int32 attempt;
    int32 max_attempts;
    int32 target_workers;
    int32 min_workers;
    int32 planned;          /* of the latest Gather launch, -1 before any */
    int32 launched;
    TimestampTz started_at;
    TimestampTz state_since;

    /* The queue (see QueueTryAdmit). */
    uint64 ticket;          /* order of arrival; 0 until the run first waits */
    int32 priority;         /* higher goes first */
    int32 need;             /* parallel workers the run needs */
    bool waiting;           /* in the queue, waiting for slots */
    bool reserved;          /* admitted, its workers not launched yet: its need is held */
    TimestampTz reserving_since; /* since when it holds ordinary sessions back; 0: it does not */

    bool async;             /* submitted: nobody waits for it */
    bool cancel_requested;  /* parallel_guarantee_cancel() asked it to stop */
    bool committing;        /* the statement succeeded and is committing: too late to cancel */
    char label[kLabelSize]; /* the caller's label, truncated */

    /* Chunked runs: the chunk each of the run's workers is on (0: none), for the chunks view. */
    int32 chunk_no[kMaxChunkWorkers];
    int32 chunk_pid[kMaxChunkWorkers];
    TimestampTz chunk_since[kMaxChunkWorkers];
    /* Chunked runs: each helper's pid while it runs (0: none), so that signals reach only it. */
    int32 helper_pid[kMaxChunkWorkers];
};

struct SharedState {
    LWLock *lock;
    int max_runs;
    uint64 next_ticket;
    /* Workers held back from ordinary sessions (reservations), readable without the lock. */
    pg_atomic_uint32 reserved_total;
    RunSlot slots[FLEXIBLE_ARRAY_MEMBER];
};

/* Statement kinds the worker treats differently. */
enum class StatementKind : int32 {
    kQuery = 0,     /* SELECT, CREATE TABLE AS, SELECT INTO, REFRESH MATERIALIZED VIEW */
    kModifying,     /* INSERT/UPDATE/DELETE/MERGE: never parallel on PostgreSQL <= 17 */
    kOther,         /* DO, CALL, EXPLAIN, COPY (query): they may run queries */
    kUtility,       /* other utility statements: they run no query, so no Gather */
};

/* What a worker does. */
enum class RunMode : int32 {
    kGuarantee = 0,    /* run_with_parallel_guarantee / submit_parallel_guarantee */
    kChunks,           /* run_in_chunks: evaluate the keys, then process chunks */
    kChunksResume,     /* resume_chunks: process the unfinished chunks of an earlier run */
};

/* The outcome of a chunked run. */
enum class ChunkStatus : int32 { kRunning = 0, kDone, kFailed, kCancelled };

constexpr uint64 kRunMagic = 0x50475541524e5431ULL; /* "PGUARNT1" */
constexpr int kTocKeyRun = 1;
constexpr int kTocKeyStatement = 2;
constexpr int kTocKeyCleanup = 3;
constexpr int kTocKeyGuc = 4;
constexpr int kTocKeyLibrary = 5;
constexpr int kTocKeyQueue = 6;
constexpr int kTocKeyLabel = 7;
constexpr Size kQueueSize = 64 * 1024;

struct RunShared {
    /* Written by the caller before the worker starts. */
    int64 run_id;
    int32 slot_index;
    int32 caller_pid;
    Oid database_id;
    Oid authenticated_user_id;
    Oid outer_user_id;          /* the current role (SET ROLE) */
    bool role_is_superuser;
    Oid current_user_id;        /* GetUserId(), e.g. a SECURITY DEFINER owner */
    int sec_context;
    RunOptions options;
    bool force_workers;
    bool raise_on_failure;
    bool wait_for_slots;
    int64 max_wait_ms;          /* bound on waiting for slots, from the start of the run */
    int32 priority;
    bool has_cleanup;
    bool has_label;
    bool async;                 /* submitted: no caller waits, no message queue */
    Oid extension_namespace;    /* where the history tables are */
    StatementKind kind;
    RunMode mode;

    /* Chunked runs (statement = the keys query, cleanup = the action). */
    int32 chunk_size;
    int32 max_retries;
    int32 max_skipped;
    int32 chunk_workers;
    int32 notice_every;
    Oid key_type;               /* set by the coordinator once the keys are known */
    Oid resume_role;            /* resume_chunks: the run's role, checked by the caller */
    pg_atomic_uint32 chunk_run_failed;   /* a chunk failed beyond its limits: stop claiming */
    pg_atomic_uint32 next_chunk;         /* the chunk dispenser: chunks 1..chunks_total, each handed out once */
    pg_atomic_uint32 chunks_committed;   /* chunks committed by all the run's workers, for progress */
    ChunkStatus chunk_status;
    int32 chunks_total;
    int32 chunks_done;
    int32 chunks_skipped;

    /* Control. */
    pg_atomic_uint32 cancel_requested;  /* set by the caller when it stops waiting */
    pg_atomic_uint32 worker_pid;
    pg_atomic_uint32 recorded;          /* the worker has written the run's history row */
    bool caller_finished;               /* caller-private: the run ended normally */

    /* Result, written by the worker. */
    RunStatus status;
    uint64 rows;
    int32 planned;
    int32 launched;
    int32 attempts_used;
    AttemptRecord attempts[kMaxAttempts];
};

extern SharedState *g_shared;

/* GUCs. */
extern int g_max_runs;
extern bool g_log_attempts;
extern bool g_reserve_slots;
extern int g_max_async_runs;
extern int g_history_days;
extern int g_max_runs_per_role;
extern int g_max_async_runs_per_role;
extern int g_max_priority;
extern int g_max_chunk_helpers;
extern int g_max_reservation_ms;

void RequestSharedState();
void InitSharedState();
Size SharedStateSize();

/*
 * Allocates a slot for a new run of user_id: the slot index, or why not: kNoFreeSlot when all
 * are taken, kTooManyAsync past parallel_guarantee.max_async_runs, kTooManyForRole and
 * kTooManyAsyncForRole past the per-role limits (which do not apply to superusers).
 */
constexpr int kNoFreeSlot = -1;
constexpr int kTooManyAsync = -2;
constexpr int kTooManyForRole = -3;
constexpr int kTooManyAsyncForRole = -4;
int AllocateSlot(int64 run_id, Oid database_id, Oid user_id, const RunOptions &options,
                 const char *label, bool async);
/* Copies the slot of run_id in this database; false when no run in progress has that id. */
bool FindRun(int64 run_id, RunSlot *copy, int *index);
/* Runs in progress in this database with this id (a resumed chunked run keeps its id). */
int CountRunsWithId(int64 run_id);
/* What parallel_guarantee_cancel_run found. */
enum class CancelAnswer { kNotInProgress, kRequested, kTooLate };
/* Marks this database's run to stop and signals its worker. */
CancelAnswer RequestCancel(int64 run_id);
/*
 * Signals go only to processes a run slot names, and only under the slot lock: a run's
 * worker and helpers clear their pid from the slot, under that lock, before they exit, so a
 * pid read under the lock cannot belong to a process that has exited (the kernel cannot
 * have reused it) for as long as the lock is held.
 *
 * SignalRunWorker sends sig to the run's worker; false when the slot is no longer the
 * run's or has no worker yet.  SignalRunHelpers sends it to every helper of the run.
 */
bool SignalRunWorker(int index, int64 run_id, int sig);
void SignalRunHelpers(int index, int64 run_id, int sig);
/* A chunk helper (1 and up) starts (pid) or is about to exit (0). */
void SetSlotHelper(int index, int64 run_id, int helper, int32 pid);
/*
 * Called by the worker just before it commits the statement: false if a cancel came
 * first (the worker then rolls back); true marks the run as committing, after which a
 * cancel answers "too late" instead of promising a cancelled run.
 */
bool SlotEnterCommit(int index, int64 run_id);
/* The commit failed after all (a deferred constraint, say): the run may be cancelled again. */
void SlotLeaveCommit(int index, int64 run_id);
/* Whether parallel_guarantee_cancel() asked this run to stop. */
bool SlotCancelRequested(int index, int64 run_id);
void ReleaseSlot(int index, int64 run_id);
void SetSlotWorker(int index, int64 run_id, int worker_pid);
void SetSlotState(int index, int64 run_id, SlotState state, int attempt);
void PublishLaunch(int index, int64 run_id, int planned, int launched);
/* A chunked run's worker (0: the coordinator) starts a chunk, or is done with it (chunk_no 0). */
void SetSlotChunk(int index, int64 run_id, int worker, int32 chunk_no);

/* Joins the queue (keeping its place if it was in it before). */
void QueueEnter(int index, int64 run_id, int need, int priority);
/*
 * Admits the run if it is first in the queue and `need` workers look free: fewer than
 * `session_max_parallel` parallel workers active and free background-worker slots, minus
 * what runs admitted before it hold.  Sets *position to its place in the queue (1 = first).
 */
bool QueueTryAdmit(int index, int64 run_id, int need, int session_max_parallel, int *position,
                   int *free_workers);
void QueueLeave(int index, int64 run_id);

/*
 * Registers a dynamic background worker that runs parallel_guarantee_worker_main on the
 * run's segment, notifying this process; a chunk helper (its number, 1 and up; 0 for the run's
 * own worker) shares the coordinator's run.  The
 * handle is allocated in TopMemoryContext.  False when no background-worker slot is free.
 */
bool RegisterRunWorker(dsm_segment *seg, const char *name, int chunk_helper,
                       BackgroundWorkerHandle **handle);

/* Says something about a run: a NOTICE for the caller and a server log line. */
void SayProgress(const char *message);


}  // namespace pgguarantee

namespace pgguarantee {
/* True in the background worker that runs a guaranteed statement. */
extern bool g_in_guarantee_worker;
}  // namespace pgguarantee
