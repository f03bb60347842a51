/*
 * run_slots.cpp: see run_slots.hpp, which states the locking protocol.  This file is the
 * only one that takes the slots' lock.
 */
#include "pg/shmem/run_slots.hpp"

#include "pg/settings.hpp"
#include "pg/shmem/pool.hpp"

#include <cstring>

namespace pgguarantee {

namespace {

struct SharedState {
    LWLock *lock;
    int max_runs;           /* parallel_guarantee.max_runs at server start */
    uint64 next_ticket;     /* the queue's order of arrival */
    int64 last_run_id;      /* the last run id given out, in any database */
    int64 reserved_run_id;  /* ids up to this one are written to kRunIdFile */
    /* Workers held back from ordinary sessions (reservations), readable without the lock. */
    pg_atomic_uint32 reserved_total;
    RunSlot slots[FLEXIBLE_ARRAY_MEMBER];
};

SharedState *g_shared = nullptr;

/*
 * Run ids are unique in the cluster: each is above every id given out before, in any
 * database, and above the database's own sequence (which carries the floor through pg_dump
 * and pg_upgrade).  Across restarts the floor is this file: before an id past the last one
 * written is given out, the next kRunIdStep ids are reserved in it (as a sequence logs ahead),
 * so after a crash no id can come twice.
 */
constexpr const char *kRunIdFile = "pg_stat/parallel_guarantee_run_ids";
constexpr int64 kRunIdStep = 1000;

int64 ReadRunIdFloor() {
    FILE *file = AllocateFile(kRunIdFile, PG_BINARY_R);
    if (file == nullptr) return 0;
    long long floor = 0;
    if (fscanf(file, "%lld", &floor) != 1 || floor < 0) floor = 0;
    FreeFile(file);
    return floor;
}

/* Writes the floor durably (temporary file, fsync, rename); false if it could not. */
bool WriteRunIdFloor(int64 floor) {
    char temp[MAXPGPATH];
    snprintf(temp, sizeof(temp), "%s.tmp", kRunIdFile);
    int fd = OpenTransientFile(temp, O_RDWR | O_CREAT | O_TRUNC | PG_BINARY);
    if (fd < 0) return false;
    char text[32];
    int len = snprintf(text, sizeof(text), "%lld\n", static_cast<long long>(floor));
    bool ok = write(fd, text, len) == len && pg_fsync(fd) == 0;
    if (CloseTransientFile(fd) != 0) ok = false;
    return ok && durable_rename(temp, kRunIdFile, LOG) == 0;
}

}  // namespace

int64 AssignRunId(int64 sequence_value) {
    if (g_shared == nullptr) return sequence_value;
    LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
    int64 id = Max(g_shared->last_run_id + 1, sequence_value);
    g_shared->last_run_id = id;
    bool reserve = id > g_shared->reserved_run_id;
    int64 floor = id + kRunIdStep;
    /* Written under the lock, so that no id past the file's floor is given out meanwhile. */
    bool written = reserve ? WriteRunIdFloor(floor) : true;
    if (reserve && written) g_shared->reserved_run_id = floor;
    LWLockRelease(g_shared->lock);
    if (!written)
        ereport(WARNING, (errcode_for_file_access(),
                          errmsg("parallel_guarantee could not write \"%s\": %m", kRunIdFile),
                          errdetail("Run ids stay unique until the server restarts; after a restart an id "
                                    "of another database's earlier run may come again.")));
    return id;
}

bool RunSlotsReady() {
    return g_shared != nullptr;
}

int MaxRuns() {
    return g_shared == nullptr ? 0 : g_shared->max_runs;
}

uint32 ReservedWorkers() {
    return g_shared == nullptr ? 0 : pg_atomic_read_u32(&g_shared->reserved_total);
}

int CopyRunSlots(RunSlot **copy) {
    *copy = nullptr;
    if (g_shared == nullptr) return 0;
    int n = g_shared->max_runs;
    *copy = static_cast<RunSlot *>(palloc(sizeof(RunSlot) * n));
    LWLockAcquire(g_shared->lock, LW_SHARED);
    memcpy(static_cast<void *>(*copy), g_shared->slots, sizeof(RunSlot) * n);
    LWLockRelease(g_shared->lock);
    return n;
}

int LiveRunIds(Oid database_id, int64 *ids) {
    int n = 0;
    if (g_shared == nullptr) return 0;
    LWLockAcquire(g_shared->lock, LW_SHARED);
    for (int i = 0; i < g_shared->max_runs; i++)
        if (g_shared->slots[i].run_id != 0 && g_shared->slots[i].database_id == database_id)
            ids[n++] = g_shared->slots[i].run_id;
    LWLockRelease(g_shared->lock);
    return n;
}

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

static Size SharedStateSize() {
    return add_size(offsetof(SharedState, slots), mul_size(sizeof(RunSlot), g_max_runs));
}

void RequestRunSlots() {
    RequestAddinShmemSpace(SharedStateSize());
    RequestNamedLWLockTranche("parallel_guarantee", 1);
}

void InitRunSlots() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    g_shared = static_cast<SharedState *>(ShmemInitStruct("parallel_guarantee", SharedStateSize(), &found));
    if (!found) {
        /* First time, or after a crash-restart: no run is in progress. */
        memset(static_cast<void *>(g_shared), 0, SharedStateSize());
        g_shared->lock = &(GetNamedLWLockTranche("parallel_guarantee"))->lock;
        g_shared->max_runs = g_max_runs;
        g_shared->next_ticket = 1;
        g_shared->last_run_id = ReadRunIdFloor();
        g_shared->reserved_run_id = g_shared->last_run_id;
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
                 const char *label, bool async, bool chunked) {
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
            slot->chunked = chunked;
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

int QueuePosition(const RunSlot *slots, int n, int index) {
    const RunSlot *me = &slots[index];
    int position = 1;
    for (int i = 0; i < n; i++) {
        const RunSlot *other = &slots[i];
        if (i != index && other->run_id != 0 && other->waiting && QueuedBefore(other, me) &&
            !ProcessGone(other->worker_pid))
            position++;
    }
    return position;
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
    return FindRunIn(MyDatabaseId, run_id, copy, index);
}

bool FindRunIn(Oid database_id, int64 run_id, RunSlot *copy, int *index) {
    bool found = false;
    if (g_shared == nullptr || run_id <= 0) return false;   /* a free slot has run id 0: never a run */
    LWLockAcquire(g_shared->lock, LW_SHARED);
    for (int i = 0; i < g_shared->max_runs; i++) {
        /* Ids given out before 1.0 came from a per-database sequence: the database is part of the key. */
        if (g_shared->slots[i].run_id == run_id && g_shared->slots[i].database_id == database_id) {
            *copy = g_shared->slots[i];
            *index = i;
            found = true;
            break;
        }
    }
    LWLockRelease(g_shared->lock);
    return found;
}

bool FindRunInOtherDatabase(int64 run_id, RunSlot *copy) {
    bool found = false;
    if (g_shared == nullptr || run_id <= 0) return false;
    LWLockAcquire(g_shared->lock, LW_SHARED);
    for (int i = 0; i < g_shared->max_runs && !found; i++) {
        if (g_shared->slots[i].run_id == run_id && g_shared->slots[i].database_id != MyDatabaseId) {
            *copy = g_shared->slots[i];
            found = true;
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

CancelAnswer RequestCancel(int64 run_id, Oid database_id) {
    CancelAnswer answer = CancelAnswer::kNotInProgress;
    if (g_shared == nullptr || run_id <= 0) return answer;
    LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
    for (int i = 0; i < g_shared->max_runs; i++) {
        RunSlot *slot = &g_shared->slots[i];
        if (slot->run_id == run_id && slot->database_id == database_id) {
            if (slot->committing) {
                answer = CancelAnswer::kTooLate;
            } else {
                slot->cancel_requested = true;
                /* Under the lock (see run_slots.hpp); a worker not started yet sees the flag when it starts. */
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

void PublishLaunchedUnlocked(int index, int64 run_id, int launched) {
    if (g_shared == nullptr || index < 0 || index >= g_shared->max_runs) return;
    volatile RunSlot *slot = &g_shared->slots[index];
    if (slot->run_id == run_id) slot->launched = launched;
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
    *position = QueuePosition(g_shared->slots, g_shared->max_runs, index);
    int held = 0;
    for (int i = 0; i < g_shared->max_runs; i++) {
        const RunSlot *other = &g_shared->slots[i];
        if (other != me && other->run_id != 0 && other->reserved) held += other->need;
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

}  // namespace pgguarantee
