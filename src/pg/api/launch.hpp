/*
 * launch.hpp: starting a run's worker from the caller's backend, and waiting for it.
 *
 * StartRun takes a run id and a run slot, builds the run's segment with the caller's
 * identity and settings, and registers the worker.  A synchronous caller then relays the
 * worker's NOTICEs as they come and gets its result or re-raises its error (AwaitWorker).
 * If the caller stops waiting (cancel, statement_timeout, termination), the segment's detach
 * callback cancels the worker's statement; the worker then runs the cleanup and exits.
 */
#pragma once

#include "pg/api/arguments.hpp"
#include "pg/history.hpp"
#include "pg/shmem/run_segment.hpp"

namespace pgguarantee {

struct Launched {
    dsm_segment *seg;
    RunShared *run;
    shm_mq_handle *mqh;     /* null for a submitted run */
};

/* How often a waiting caller checks that the worker is not waiting for the caller's own locks. */
constexpr long kSelfDeadlockCheckMs = 500;

/*
 * Takes a run id (a resume: checks the caller may resume it) and a run slot, and starts the
 * worker.  A submitted run (async) has been recorded in the history when this returns.
 */
Launched StartRun(FunctionCallInfo fcinfo, RunRequest &r, bool async, int64 *run_id_out);

/*
 * resume_chunks of a run that is already done: true, with its row, once the caller is known
 * to be allowed to resume it (the same checks as StartRun); nothing is started.
 */
bool ResumeOfDoneRun(FunctionCallInfo fcinfo, int64 run_id, RunRow *row);

/*
 * Waits for the worker of a synchronous run and re-raises its error, if any, with a context
 * line naming it.  On return the worker has recorded the run, left its run slot and is
 * exiting (the session's next run waits until it is gone); the caller still has the segment
 * mapped (detach it after reading the result).
 */
RunShared *AwaitWorker(const Launched &launched, int64 run_id, const char *worker_name);

/*
 * True if the worker waits for a heavyweight lock that this session holds in a conflicting
 * mode (it would wait for the caller, which waits for it).
 */
bool WorkerWaitsForMe(pid_t pid);

/*
 * Watches a waiting caller for that self-deadlock, one look every kSelfDeadlockCheckMs:
 * the worker's wait is read without its lock, so only two looks in a row that agree count.
 */
struct SelfDeadlockWatch {
    int looks_in_a_row = 0;
    bool Deadlocked(pid_t worker_pid) {
        looks_in_a_row = WorkerWaitsForMe(worker_pid) ? looks_in_a_row + 1 : 0;
        return looks_in_a_row >= 2;
    }
};

}  // namespace pgguarantee
