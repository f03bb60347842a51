/*
 * run_slots.hpp: the run slots and the queue, in the main shared memory (which is why the
 * library must be in shared_preload_libraries).  One RunSlot per run in progress, across all
 * databases: what the activity, queue and chunk views show, where a worker publishes the
 * workers each Gather launched, where cancels are asked for, and how the queue is ordered.
 *
 * Locking protocol.  One named LWLock guards every field of every slot and the queue's
 * ticket counter; run_slots.cpp is the only code that takes it.  A slot is taken, freed and
 * written under the lock held exclusively, and read (or copied) under it held shared.  A
 * slot is addressed by (index, run_id): a function given a stale index finds another run id
 * there and does nothing, so a freed and reused slot is never touched by its old owner.
 * reserved_total is an atomic, written under the exclusive lock and read without it by
 * ordinary sessions' executor hook.  Signals are sent only under the lock, to pids the slot
 * names: a run's worker and helpers remove their pid from the slot, under the lock, before
 * they exit, so a pid read under the lock cannot have been reused by the kernel while the
 * lock is held.
 */
#pragma once

#include "core/policy.hpp"
#include "pg/parallel_guarantee.hpp"

#include "port/atomics.h"

namespace pgguarantee {

enum class SlotState : int32 {
    kFree = 0,
    kStarting,        /* registered, worker not yet running the statement */
    kWaitingForSlots, /* queued until enough worker slots are free */
    kRunning,         /* an attempt is running */
    kWaitingRetry,    /* between attempts */
    kCleaningUp,      /* running the cleanup statement */
    kFinishing,
};

const char *SlotStateName(SlotState state);

/* Every field is guarded by SharedState.lock (see above). */
struct RunSlot {
    int64 run_id;           /* 0: free */
    int32 caller_pid;
    int32 worker_pid;       /* set by the worker once it runs; 0 before */
    Oid database_id;
    Oid user_id;            /* the role the run belongs to */
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
    bool chunked;           /* a chunked run (run_in_chunks, submit_chunks, resume_chunks) */
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

/* Set up at server start, when the library is preloaded; null otherwise. */
bool RunSlotsReady();

/* shmem_request_hook / shmem_startup_hook parts. */
void RequestRunSlots();
void InitRunSlots();

/*
 * Takes a slot for a new run of user_id: the slot index, or why not: kNoFreeSlot when all
 * are taken, kTooManyAsync past parallel_guarantee.max_async_runs, kTooManyForRole and
 * kTooManyAsyncForRole past the per-role limits (which do not apply to superusers).
 */
constexpr int kNoFreeSlot = -1;
constexpr int kTooManyAsync = -2;
constexpr int kTooManyForRole = -3;
constexpr int kTooManyAsyncForRole = -4;
int AllocateSlot(int64 run_id, Oid database_id, Oid user_id, const RunOptions &options,
                 const char *label, bool async, bool chunked);
int MaxRuns();
/*
 * The id of a new run: above every id given out before in any database of the cluster (and
 * across restarts) and at least sequence_value, the database's own sequence's next value.
 */
int64 AssignRunId(int64 sequence_value);
void ReleaseSlot(int index, int64 run_id);

/* Copies the slot of run_id in this database; false when no run in progress has that id. */
bool FindRun(int64 run_id, RunSlot *copy, int *index);
/* The same in the given database. */
bool FindRunIn(Oid database_id, int64 run_id, RunSlot *copy, int *index);
/*
 * Copies the slot of a run with this id in progress in another database (run ids are
 * numbered per database); false when there is none.
 */
bool FindRunInOtherDatabase(int64 run_id, RunSlot *copy);
/* Runs in progress in this database with this id (a resumed chunked run keeps its id). */
int CountRunsWithId(int64 run_id);
/* A copy of every slot, taken in one go (palloc'd); the number of slots, 0 without shared memory. */
int CopyRunSlots(RunSlot **copy);
/* The ids of the runs in progress in a database, into ids (room for MaxRuns()); how many. */
int LiveRunIds(Oid database_id, int64 *ids);
/* A waiting run's place in the queue among slots (1 = first), for a copy or the live table. */
int QueuePosition(const RunSlot *slots, int n, int index);
/* Workers ordinary sessions leave free for queued runs (parallel_guarantee.reserve_slots). */
uint32 ReservedWorkers();

/* What RequestCancel found. */
enum class CancelAnswer { kNotInProgress, kRequested, kTooLate };
/* Marks this database's run to stop and signals its worker. */
CancelAnswer RequestCancel(int64 run_id, Oid database_id);
/* Sends sig to the run's worker; false when the slot is no longer the run's or has no worker yet. */
bool SignalRunWorker(int index, int64 run_id, int sig);
/* Sends sig to every helper of the run. */
void SignalRunHelpers(int index, int64 run_id, int sig);
/* Whether parallel_guarantee_cancel() asked this run to stop. */
bool SlotCancelRequested(int index, int64 run_id);
/*
 * Called by the worker just before it commits the statement: false if a cancel came
 * first (the worker then rolls back); true marks the run as committing, after which a
 * cancel answers "too late" instead of promising a cancelled run.
 */
bool SlotEnterCommit(int index, int64 run_id);
/* The commit failed after all (a deferred constraint, say): the run may be cancelled again. */
void SlotLeaveCommit(int index, int64 run_id);

void SetSlotWorker(int index, int64 run_id, int worker_pid);
void SetSlotState(int index, int64 run_id, SlotState state, int attempt);
void PublishLaunch(int index, int64 run_id, int planned, int launched);
/*
 * The launched count of a run's launch in progress, written without the lock (one aligned
 * 32-bit store), so that a signal handler may call it; PublishLaunch follows at a safe point.
 */
void PublishLaunchedUnlocked(int index, int64 run_id, int launched);
/* A chunked run's worker (0: the coordinator) starts a chunk, or is done with it (chunk_no 0). */
void SetSlotChunk(int index, int64 run_id, int worker, int32 chunk_no);
/* A chunk helper (1 and up) starts (pid) or is about to exit (0). */
void SetSlotHelper(int index, int64 run_id, int helper, int32 pid);

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

}  // namespace pgguarantee
