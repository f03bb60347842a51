/*
 * module.cpp: loading the module: settings, shared memory and hooks.
 *
 * parallel_guarantee must be in shared_preload_libraries: the run slots live in the main
 * shared memory and the executor hook must be in every process the postmaster forks.
 * Loaded any other way it defines its settings and the SQL functions say what is missing.
 */
#include "pg/monitor.hpp"
#include "pg/pool.hpp"
#include "pg/shared.hpp"

#include <climits>
#include <cstring>

extern "C" {
PARALLEL_GUARANTEE_MODULE_MAGIC;
void _PG_init(void);
}

namespace pgguarantee {

SharedState *g_shared = nullptr;
int g_max_runs = 32;
bool g_log_attempts = true;
bool g_reserve_slots = false;
int g_max_async_runs = 8;
int g_history_days = 30;
int g_max_runs_per_role = 8;
int g_max_async_runs_per_role = 4;
int g_max_priority = 0;
int g_max_chunk_helpers = 4;
int g_max_reservation_ms = 10000;

namespace {

#if PG_VERSION_NUM >= 150000
shmem_request_hook_type prev_shmem_request_hook = nullptr;
#endif
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

#if PG_VERSION_NUM >= 150000
void GuaranteeShmemRequest(void) {
    CatchingCall([] {
        if (prev_shmem_request_hook) prev_shmem_request_hook();
        RequestSharedState();
    });
}
#endif

void GuaranteeShmemStartup(void) {
    CatchingCall([] {
        if (prev_shmem_startup_hook) prev_shmem_startup_hook();
        InitSharedState();
    });
}

void DefineSettings() {
    /* A PGC_POSTMASTER setting can only be defined while the server starts. */
    if (process_shared_preload_libraries_in_progress)
        DefineCustomIntVariable(
        "parallel_guarantee.max_runs",
        "Maximum number of guaranteed runs in progress at once, across all databases.",
        "Each run in progress holds one slot in shared memory. Changing it needs a restart.",
        &g_max_runs, 32, 1, 1024, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "parallel_guarantee.log_attempts",
        "Writes a server log line for every attempt of a guaranteed run.",
        "Lines start with \"parallel_guarantee:\"; NOTICEs go to the caller regardless.",
        &g_log_attempts, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "parallel_guarantee.reserve_slots",
        "Holds ordinary sessions' parallel queries below the workers a waiting guaranteed run needs.",
        "While a guaranteed run is first in the queue or admitted and about to launch, other "
        "sessions' queries start with fewer parallel workers so the run finds its workers free.",
        &g_reserve_slots, false, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "parallel_guarantee.max_async_runs",
        "Maximum number of submitted (asynchronous) guaranteed runs in progress at once.",
        "submit_parallel_guarantee() refuses more with SQLSTATE 53G05.",
        &g_max_async_runs, 8, 0, 1024, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "parallel_guarantee.history_days",
        "Days a finished run stays in the history tables; 0 keeps them forever.",
        "Older runs are deleted by the next run that finishes in the same database; a run "
        "uses the value of the session that started it.",
        &g_history_days, 30, 0, 36500, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "parallel_guarantee.max_runs_per_role",
        "Maximum number of guaranteed and chunked runs in progress at once for one role.",
        "Counted by the role a run belongs to; superusers are not limited. Past it, a new "
        "run is refused with SQLSTATE 53G06.",
        &g_max_runs_per_role, 8, 1, 1024, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "parallel_guarantee.max_async_runs_per_role",
        "Maximum number of submitted (asynchronous) runs in progress at once for one role.",
        "Superusers are not limited. Past it, a submit is refused with SQLSTATE 53G06.",
        &g_max_async_runs_per_role, 4, 0, 1024, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "parallel_guarantee.max_priority",
        "Highest queue priority a role may ask for.",
        "Only superusers may change it: grant a role more with ALTER ROLE ... SET "
        "parallel_guarantee.max_priority = n. A priority above it is refused with SQLSTATE 42501.",
        &g_max_priority, 0, 0, INT_MAX, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "parallel_guarantee.max_chunk_helpers",
        "Maximum number of helper workers one chunked run may start besides its own worker.",
        "run_in_chunks(workers => n) starts at most this many helpers, and never takes the "
        "background-worker slots the run's own parallel queries need.",
        &g_max_chunk_helpers, 4, 0, 63, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "parallel_guarantee.max_reservation_time",
        "Longest time one queued run may hold ordinary sessions' parallel queries back.",
        "With parallel_guarantee.reserve_slots on, a run first in the queue stops reserving "
        "workers after this long and waits like any other.",
        &g_max_reservation_ms, 10000, 0, 3600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
#if PG_VERSION_NUM >= 150000
    MarkGUCPrefixReserved("parallel_guarantee");
#else
    EmitWarningsOnPlaceholders("parallel_guarantee");
#endif
}

}  // namespace

const char *SlotStateName(SlotState state) {
    switch (state) {
        case SlotState::kFree: return "free";
        case SlotState::kStarting: return "starting";
        case SlotState::kWaitingForSlots: return "waiting for slots";
        case SlotState::kRunning: return "running";
        case SlotState::kWaitingRetry: return "waiting to retry";
        case SlotState::kCleaningUp: return "cleaning up";
        case SlotState::kFinishing: return "finishing";
    }
    return "unknown";
}

Size SharedStateSize() {
    return add_size(offsetof(SharedState, slots), mul_size(sizeof(RunSlot), g_max_runs));
}

void RequestSharedState() {
    RequestAddinShmemSpace(SharedStateSize());
    RequestNamedLWLockTranche("parallel_guarantee", 1);
}

void InitSharedState() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    g_shared = static_cast<SharedState *>(ShmemInitStruct("parallel_guarantee", SharedStateSize(), &found));
    if (!found) {
        /* First time, or after a crash-restart: no run is in progress. */
        memset(static_cast<void *>(g_shared), 0, SharedStateSize());
        g_shared->lock = &(GetNamedLWLockTranche("parallel_guarantee"))->lock;
        g_shared->max_runs = g_max_runs;
        g_shared->next_ticket = 1;
        pg_atomic_init_u32(&g_shared->reserved_total, 0);
    }
    LWLockRelease(AddinShmemInitLock);
}

/* A slot still "starting" after this long with its caller gone never got a worker. */
constexpr int kStartingReclaimMs = 60000;

/* True when the process that owns pid is gone (0 counts as gone). */
static bool ProcessGone(int32 pid) {
    return pid == 0 || (kill(pid, 0) != 0 && errno == ESRCH);
}

int AllocateSlot(int64 run_id, Oid database_id, Oid user_id, const RunOptions &options,
                 const char *label, bool async) {
    int index = kNoFreeSlot;
    TimestampTz now = GetCurrentTimestamp();
    bool limited = !superuser_arg(user_id);
    LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
    int running_async = 0, of_role = 0, async_of_role = 0;
    for (int i = 0; i < g_shared->max_runs; i++) {
        const RunSlot *slot = &g_shared->slots[i];
        if (slot->run_id == 0) continue;
        if (slot->async) running_async++;
        if (slot->user_id == user_id) {
            of_role++;
            if (slot->async) async_of_role++;
        }
    }
    int refusal = 0;
    if (async && running_async >= g_max_async_runs)
        refusal = kTooManyAsync;
    else if (limited && of_role >= g_max_runs_per_role)
        refusal = kTooManyForRole;
    else if (limited && async && async_of_role >= g_max_async_runs_per_role)
        refusal = kTooManyAsyncForRole;
    if (refusal != 0) {
        LWLockRelease(g_shared->lock);
        return refusal;
    }
    for (int i = 0; i < g_shared->max_runs; i++) {
        RunSlot *slot = &g_shared->slots[i];
        /*
         * Reclaim a slot whose caller and worker both died without releasing it; one still
         * starting only once it has waited long enough for any worker to have started.
         */
        if (slot->run_id != 0 && ProcessGone(slot->caller_pid) && ProcessGone(slot->worker_pid) &&
            (slot->state != SlotState::kStarting ||
             TimestampDifferenceExceeds(slot->started_at, now, kStartingReclaimMs)))
            slot->run_id = 0;
        if (slot->run_id == 0) {
            memset(static_cast<void *>(slot), 0, sizeof(*slot));
            slot->run_id = run_id;
            slot->caller_pid = MyProcPid;
            slot->database_id = database_id;
            slot->user_id = user_id;
            slot->state = SlotState::kStarting;
            slot->max_attempts = options.max_attempts;
            slot->target_workers = options.target_workers;
            slot->min_workers = options.min_workers;
            slot->planned = -1;
            slot->launched = -1;
            slot->started_at = now;
            slot->state_since = now;
            slot->async = async;
            if (label != nullptr) strlcpy(slot->label, label, sizeof slot->label);
            index = i;
            break;
        }
    }
    LWLockRelease(g_shared->lock);
    return index;
}

/* True if a goes before b in the queue: higher priority, then earlier arrival. */
static bool QueuedBefore(const RunSlot *a, const RunSlot *b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->ticket < b->ticket;
}

/* The first waiting run, or null.  Caller holds the lock. */
static RunSlot *QueueHead() {
    RunSlot *head = nullptr;
    for (int i = 0; i < g_shared->max_runs; i++) {
        RunSlot *slot = &g_shared->slots[i];
        if (slot->run_id != 0 && slot->waiting && (head == nullptr || QueuedBefore(slot, head)))
            head = slot;
    }
    return head;
}

/*
 * What ordinary sessions must leave free: the needs of the first waiting run and of runs
 * admitted but not launched yet, each for at most parallel_guarantee.max_reservation_time
 * from when it started to hold them.  Caller holds the lock in exclusive mode.  The head of
 * the queue calls this every few milliseconds while it waits, so an expired reservation is
 * let go of at once.
 */
static void RecomputeReservations() {
    TimestampTz now = GetCurrentTimestamp();
    uint32 total = 0;
    RunSlot *head = QueueHead();
    for (int i = 0; i < g_shared->max_runs; i++) {
        RunSlot *slot = &g_shared->slots[i];
        if (slot->run_id == 0 || !(slot->reserved || slot == head)) {
            slot->reserving_since = 0;
            continue;
        }
        if (slot->reserving_since == 0) slot->reserving_since = now;
        if (!TimestampDifferenceExceeds(slot->reserving_since, now, g_max_reservation_ms)) total += slot->need;
    }
    pg_atomic_write_u32(&g_shared->reserved_total, total);
}

/* Runs fn on the slot under the exclusive lock if it still belongs to run_id. */
template <typename Fn>
static void WithSlot(int index, int64 run_id, Fn fn) {
    if (g_shared == nullptr || index < 0 || index >= g_shared->max_runs) return;
    LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
    RunSlot *slot = &g_shared->slots[index];
    if (slot->run_id == run_id) fn(slot);
    RecomputeReservations();
    LWLockRelease(g_shared->lock);
}

bool FindRun(int64 run_id, RunSlot *copy, int *index) {
    bool found = false;
    if (g_shared == nullptr || run_id <= 0) return false;   /* a free slot has run id 0: never a run */
    LWLockAcquire(g_shared->lock, LW_SHARED);
    for (int i = 0; i < g_shared->max_runs; i++) {
        /* Run ids come from a per-database sequence: the database is part of the key. */
        if (g_shared->slots[i].run_id == run_id && g_shared->slots[i].database_id == MyDatabaseId) {
            *copy = g_shared->slots[i];
            *index = i;
            found = true;
            break;
        }
    }
    LWLockRelease(g_shared->lock);
    return found;
}

int CountRunsWithId(int64 run_id) {
    int count = 0;
    if (g_shared == nullptr || run_id <= 0) return 0;
    LWLockAcquire(g_shared->lock, LW_SHARED);
    for (int i = 0; i < g_shared->max_runs; i++)
        if (g_shared->slots[i].run_id == run_id && g_shared->slots[i].database_id == MyDatabaseId) count++;
    LWLockRelease(g_shared->lock);
    return count;
}

CancelAnswer RequestCancel(int64 run_id) {
    CancelAnswer answer = CancelAnswer::kNotInProgress;
    if (g_shared == nullptr || run_id <= 0) return answer;
    LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
    for (int i = 0; i < g_shared->max_runs; i++) {
        RunSlot *slot = &g_shared->slots[i];
        if (slot->run_id == run_id && slot->database_id == MyDatabaseId) {
            if (slot->committing) {
                answer = CancelAnswer::kTooLate;
            } else {
                slot->cancel_requested = true;
                /* Under the lock (see shared.hpp); a worker not started yet sees the flag when it starts. */
                if (slot->worker_pid != 0) (void) kill(slot->worker_pid, SIGINT);
                answer = CancelAnswer::kRequested;
            }
            break;
        }
    }
    LWLockRelease(g_shared->lock);
    return answer;
}

bool SignalRunWorker(int index, int64 run_id, int sig) {
    bool sent = false;
    if (g_shared == nullptr || index < 0 || index >= g_shared->max_runs) return false;
    LWLockAcquire(g_shared->lock, LW_SHARED);
    const RunSlot *slot = &g_shared->slots[index];
    if (slot->run_id == run_id && slot->worker_pid != 0) sent = kill(slot->worker_pid, sig) == 0;
    LWLockRelease(g_shared->lock);
    return sent;
}

void SignalRunHelpers(int index, int64 run_id, int sig) {
    if (g_shared == nullptr || index < 0 || index >= g_shared->max_runs) return;
    LWLockAcquire(g_shared->lock, LW_SHARED);
    const RunSlot *slot = &g_shared->slots[index];
    if (slot->run_id == run_id)
        for (int w = 1; w < kMaxChunkWorkers; w++)
            if (slot->helper_pid[w] != 0) (void) kill(slot->helper_pid[w], sig);
    LWLockRelease(g_shared->lock);
}

void SetSlotHelper(int index, int64 run_id, int helper, int32 pid) {
    if (g_shared == nullptr || index < 0 || index >= g_shared->max_runs || helper < 1 || helper >= kMaxChunkWorkers)
        return;
    LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
    RunSlot *slot = &g_shared->slots[index];
    /* A stale helper of an earlier coordinator never clears this run's helper's entry. */
    if (slot->run_id == run_id && (pid != 0 || slot->helper_pid[helper] == MyProcPid)) slot->helper_pid[helper] = pid;
    LWLockRelease(g_shared->lock);
}

bool SlotEnterCommit(int index, int64 run_id) {
    bool may_commit = true;
    if (g_shared == nullptr || index < 0 || index >= g_shared->max_runs) return true;
    LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
    RunSlot *slot = &g_shared->slots[index];
    if (slot->run_id == run_id) {
        if (slot->cancel_requested)
            may_commit = false;
        else
            slot->committing = true;
    }
    LWLockRelease(g_shared->lock);
    return may_commit;
}

void SlotLeaveCommit(int index, int64 run_id) {
    if (g_shared == nullptr || index < 0 || index >= g_shared->max_runs) return;
    WithSlot(index, run_id, [](RunSlot *slot) { slot->committing = false; });
}

bool SlotCancelRequested(int index, int64 run_id) {
    bool requested = false;
    if (g_shared == nullptr || index < 0 || index >= g_shared->max_runs) return false;
    LWLockAcquire(g_shared->lock, LW_SHARED);
    const RunSlot *slot = &g_shared->slots[index];
    requested = slot->run_id == run_id && slot->cancel_requested;
    LWLockRelease(g_shared->lock);
    return requested;
}

void ReleaseSlot(int index, int64 run_id) {
    WithSlot(index, run_id, [](RunSlot *slot) { slot->run_id = 0; });
}

void SetSlotWorker(int index, int64 run_id, int worker_pid) {
    WithSlot(index, run_id, [worker_pid](RunSlot *slot) { slot->worker_pid = worker_pid; });
}

void SetSlotState(int index, int64 run_id, SlotState state, int attempt) {
    TimestampTz now = GetCurrentTimestamp();
    WithSlot(index, run_id, [=](RunSlot *slot) {
        /* A reservation lasts from admission until the launch, or the attempt's end. */
        if (state != SlotState::kRunning) slot->reserved = false;
        if (state != SlotState::kWaitingForSlots) slot->waiting = false;
        slot->state = state;
        slot->attempt = attempt;
        slot->state_since = now;
    });
}

void SetSlotChunk(int index, int64 run_id, int worker, int32 chunk_no) {
    if (worker < 0 || worker >= kMaxChunkWorkers) return;
    TimestampTz now = GetCurrentTimestamp();
    int32 pid = MyProcPid;
    if (g_shared == nullptr || index < 0 || index >= g_shared->max_runs) return;
    /* Not WithSlot: nothing here changes what the queue reserves. */
    LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
    RunSlot *slot = &g_shared->slots[index];
    /* A stale helper of an earlier coordinator never clears the entry of this run's helper. */
    if (slot->run_id == run_id && (chunk_no != 0 || slot->chunk_pid[worker] == pid)) {
        slot->chunk_no[worker] = chunk_no;
        slot->chunk_pid[worker] = pid;
        slot->chunk_since[worker] = now;
    }
    LWLockRelease(g_shared->lock);
}

void PublishLaunch(int index, int64 run_id, int planned, int launched) {
    WithSlot(index, run_id, [=](RunSlot *slot) {
        slot->planned = planned;
        slot->launched = launched;
        slot->reserved = false;   /* its workers are now counted by the pool itself */
    });
}

void QueueEnter(int index, int64 run_id, int need, int priority) {
    WithSlot(index, run_id, [=](RunSlot *slot) {
        if (slot->ticket == 0) slot->ticket = g_shared->next_ticket++;
        slot->priority = priority;
        slot->need = need;
        slot->waiting = true;
        slot->reserved = false;
    });
}

void QueueLeave(int index, int64 run_id) {
    WithSlot(index, run_id, [](RunSlot *slot) { slot->waiting = false; });
}

bool QueueTryAdmit(int index, int64 run_id, int need, int session_max_parallel, int *position,
                   int *free_workers) {
    bool admitted = false;
    LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
    RunSlot *me = &g_shared->slots[index];
    if (me->run_id != run_id) {
        LWLockRelease(g_shared->lock);
        return true;
    }
    *position = 1;
    int held = 0;
    for (int i = 0; i < g_shared->max_runs; i++) {
        RunSlot *other = &g_shared->slots[i];
        if (other == me || other->run_id == 0) continue;
        if (other->reserved) held += other->need;
        if (other->waiting && QueuedBefore(other, me) && !ProcessGone(other->worker_pid))
            (*position)++;
    }
    WorkerPool pool = ReadWorkerPool();
    int free_parallel = session_max_parallel - pool.active_parallel - held;
    int free_slots = pool.total_slots - pool.used_slots - held;
    *free_workers = Max(0, Min(free_parallel, free_slots));
    if (*position == 1 && free_parallel >= need && free_slots >= need) {
        me->waiting = false;
        me->reserved = true;
        admitted = true;
    }
    RecomputeReservations();
    LWLockRelease(g_shared->lock);
    return admitted;
}

bool RegisterRunWorker(dsm_segment *seg, const char *name, int chunk_helper,
                       BackgroundWorkerHandle **handle) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_ConsistentState;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    strlcpy(worker.bgw_library_name, kLibraryName, BGW_MAXLEN);
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "parallel_guarantee_worker_main");
    strlcpy(worker.bgw_name, name, BGW_MAXLEN);
    strlcpy(worker.bgw_type, kWorkerType, BGW_MAXLEN);
    worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
    worker.bgw_notify_pid = MyProcPid;
    worker.bgw_extra[0] = static_cast<char>(chunk_helper);
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    bool registered = RegisterDynamicBackgroundWorker(&worker, handle);
    MemoryContextSwitchTo(old);
    return registered;
}

char *PallocCopy(const std::string &text) {
    char *copy = static_cast<char *>(
        MemoryContextAllocExtended(CurrentMemoryContext, text.size() + 1, MCXT_ALLOC_NO_OOM));
    if (copy == nullptr) return const_cast<char *>("(out of memory)");
    memcpy(copy, text.c_str(), text.size() + 1);
    return copy;
}

void SayProgress(const char *message) {
    ereport(NOTICE, (errmsg("parallel_guarantee: %s", message), errhidecontext(true)));
    if (g_log_attempts)
        ereport(LOG_SERVER_ONLY,
                (errmsg("parallel_guarantee: %s", message), errhidestmt(true), errhidecontext(true)));
}

}  // namespace pgguarantee

namespace pgguarantee {
namespace {
void InitModule();
}  // namespace
}  // namespace pgguarantee

using namespace pgguarantee;

void _PG_init(void) {
    CatchingCall([] { InitModule(); });
}

namespace pgguarantee {
namespace {

void InitModule() {
    DefineSettings();
    if (!process_shared_preload_libraries_in_progress) return;

#if PG_VERSION_NUM >= 150000
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = GuaranteeShmemRequest;
#else
    RequestSharedState();
#endif
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = GuaranteeShmemStartup;
    InstallMonitorHooks();
}

}  // namespace
}  // namespace pgguarantee
