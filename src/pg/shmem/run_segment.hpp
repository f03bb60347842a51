/*
 * run_segment.hpp: a run's dynamic shared memory segment, set up by the caller before the
 * worker starts and attached by the worker (and a chunked run's helpers).
 *
 * Layout (a shm_toc): the RunShared struct; the statement (a chunked run's keys query), the
 * cleanup (a chunked run's action) and the label as zero-terminated texts; the caller's
 * serialized settings and loaded libraries, as parallel query hands them to its workers;
 * the message queue the worker sends its NOTICEs and error through (unused by submitted
 * runs, whose caller does not wait).
 *
 * Who writes what: the caller fills in everything above "Control" before the worker is
 * registered, and never changes it after (a resume's helpers read what the coordinator
 * wrote there before starting them).  The control fields are atomics, written by either side.
 * The result is written by the worker, and read by the caller only after the worker has
 * detached from the message queue and exited.  caller_finished is the caller's own.
 */
#pragma once

#include "core/policy.hpp"
#include "pg/parallel_guarantee.hpp"

#include "port/atomics.h"

namespace pgguarantee {

/*
 * The moments of a call, for parallel_guarantee.trace_phases (bench/phases.sh): each written
 * once by the process that reaches it (the caller or the worker), read by the caller after
 * the worker has exited.  Of the attempts, the last one's.
 */
enum RunPhase {
    kPhaseCalled,            /* caller: the function was called */
    kPhaseRegistered,        /* caller: checks done, slot taken, worker registered */
    kPhaseWorkerStarted,     /* worker: its main function entered */
    kPhaseConnected,         /* worker: connected to the database as the caller */
    kPhaseRecorded,          /* worker: the run is in the history */
    kPhaseStatementStarted,  /* worker: the last attempt's statement starts (parse, plan) */
    kPhaseLaunched,          /* worker: its first Gather launched */
    kPhaseStatementDone,     /* worker: the statement committed */
    kPhaseEndRecorded,       /* worker: the end is in the history */
    kPhaseResultReceived,    /* caller: the worker's result and messages are in */
    kPhaseReturned,          /* caller: the worker has exited; the call returns */
    kRunPhases
};

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
    TimestampTz phase_at[kRunPhases];   /* see RunPhase; 0: not reached */
    int32 retry_sqlstates[kMaxRetrySqlstates];   /* retried like a short launch */
    int32 n_retry_sqlstates;
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
    Oid resume_role;            /* resume_chunks: the run's role, checked by the caller */
    Oid key_type;               /* set by the coordinator once the keys are known */
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

/* A run's segment as the caller builds it or the worker finds it. */
struct RunSegment {
    dsm_segment *seg;
    RunShared *run;
    const char *statement;
    const char *cleanup;        /* "" when there is none */
    const char *label;          /* "" when there is none */
    shm_mq *queue;
    char *settings;             /* SerializeGUCState's output */
    char *libraries;            /* SerializeLibraryState's output */
};

/*
 * Caller: creates the segment with the texts, this session's settings and libraries, and a
 * zeroed RunShared whose atomics are initialised, for the caller to fill in.  May raise an
 * error (no dynamic shared memory): nothing else is taken yet.
 */
RunSegment CreateRunSegment(const char *statement, const char *cleanup, const char *label);

/* Worker: attaches to the segment (kept mapped for the life of the process) and finds its parts. */
RunSegment AttachRunSegment(dsm_handle handle);

/*
 * Whether the run was asked to stop: by its caller, who stopped waiting (the segment's flag),
 * or by parallel_guarantee_cancel() (the run's slot).
 */
bool RunCancelRequested(const RunShared *run);

/*
 * Registers a dynamic background worker that runs parallel_guarantee_worker_main on the
 * run's segment, notifying this process; a chunk helper (its number, 1 and up; 0 for the
 * run's own worker) shares the coordinator's run.  The handle is allocated in
 * TopMemoryContext.  False when no background-worker slot is free.
 */
bool RegisterRunWorker(dsm_segment *seg, const char *name, int chunk_helper,
                       BackgroundWorkerHandle **handle);

}  // namespace pgguarantee
