/*
 * settings.cpp: see settings.hpp.
 */
#include "pg/settings.hpp"

#include "pg/parallel_guarantee.hpp"

#include "pg/pg_includes.hpp"

#include <climits>

namespace pgguarantee {

int g_max_runs = 32;
int g_log_attempts = static_cast<int>(LogAttempts::kProblems);
bool g_reserve_slots = false;
int g_max_async_runs = 8;
int g_history_days = 30;
int g_max_runs_per_role = 8;
int g_max_async_runs_per_role = 4;
int g_max_priority = 0;
int g_max_chunk_helpers = 4;
int g_max_reservation_ms = 10000;
bool g_track_downgrades = true;
int g_max_downgrade_entries = 1000;
int g_server_log_floor = -1;
char *g_notify_channel = nullptr;
bool g_trace_phases = false;
bool g_preload_jit = true;

/* on/off from 0.5 stay accepted: on is all, off is none. */
const struct config_enum_entry kLogAttemptsOptions[] = {
    {"none", static_cast<int>(LogAttempts::kNone), false},
    {"problems", static_cast<int>(LogAttempts::kProblems), false},
    {"all", static_cast<int>(LogAttempts::kAll), false},
    {"on", static_cast<int>(LogAttempts::kAll), true},
    {"off", static_cast<int>(LogAttempts::kNone), true},
    {"true", static_cast<int>(LogAttempts::kAll), true},
    {"false", static_cast<int>(LogAttempts::kNone), true},
    {nullptr, 0, false}};

/* A NOTIFY channel is a name: shorter than NAMEDATALEN, or the run's end could not be recorded. */
bool CheckNotifyChannel(char **value, void **, GucSource) {
    if (*value != nullptr && strlen(*value) >= NAMEDATALEN) {
        GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
        GUC_check_errdetail("A channel name has at most %d bytes.", NAMEDATALEN - 1);
        return false;
    }
    return true;
}

void DefineSettings() {
    /* A PGC_POSTMASTER setting can only be defined while the server starts. */
    if (process_shared_preload_libraries_in_progress) {
        DefineCustomBoolVariable(
            "parallel_guarantee.preload_jit",
            "Loads the JIT provider (jit_provider, llvmjit) into the postmaster at start when jit is on.",
            "Every process the postmaster starts (a run's worker, parallel workers, sessions) then finds "
            "LLVM loaded instead of loading it at its first compiled query (about 20 ms on a small VM). "
            "Changing it needs a restart.",
            &g_preload_jit, true, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
        DefineCustomIntVariable(
            "parallel_guarantee.max_downgrade_entries",
            "Maximum number of (database, role, query id) entries in parallel_guarantee_downgrades.",
            "Past it the least-used 5 % are evicted (counted in parallel_guarantee_downgrades_info()). "
            "Each entry takes about 150 bytes of shared memory. Changing it needs a restart.",
            &g_max_downgrade_entries, 1000, 10, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    }
    DefineCustomBoolVariable(
        "parallel_guarantee.track_downgrades",
        "Counts every parallel launch in the server, and how far short of its plan it fell.",
        "The counts are in the view parallel_guarantee_downgrades.",
        &g_track_downgrades, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "parallel_guarantee.trace_phases",
        "Ends each run_with_parallel_guarantee call with a NOTICE of where its time went.",
        "Phases: checks and registration, worker start, connection, recording the run, waiting "
        "and planning, launch, execution and commit, recording the end, result, worker exit.",
        &g_trace_phases, false, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "parallel_guarantee.notify_channel",
        "A channel on which a NOTIFY with a JSON payload is sent when a run ends; empty: none.",
        "Sent when the run's history row commits, from the run's database.",
        &g_notify_channel, "", PGC_USERSET, 0, CheckNotifyChannel, nullptr, nullptr);
    if (process_shared_preload_libraries_in_progress)
        DefineCustomIntVariable(
        "parallel_guarantee.max_runs",
        "Maximum number of guaranteed runs in progress at once, across all databases.",
        "Each run in progress holds one slot in shared memory. Changing it needs a restart.",
        &g_max_runs, 32, 1, 1024, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable(
        "parallel_guarantee.log_attempts",
        "Which attempts of guaranteed runs are written to the server log.",
        "none: none; problems: abandoned, degraded and failed attempts and waits that max_wait "
        "ended; all: every line the caller is told.  Lines start with \"parallel_guarantee:\"; "
        "the caller gets its NOTICEs regardless.",
        &g_log_attempts, static_cast<int>(LogAttempts::kProblems), kLogAttemptsOptions, PGC_SUSET, 0,
        nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "parallel_guarantee.reserve_slots",
        "Holds ordinary sessions' parallel queries below the workers a waiting guaranteed run needs.",
        "While a guaranteed run is first in the queue or admitted and about to launch, other "
        "sessions' queries start with fewer parallel workers so the run finds its workers free.",
        &g_reserve_slots, false, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "parallel_guarantee.server_log_floor",
        "Internal: the server log level a guaranteed VACUUM's processes keep to.",
        "Set by the extension while it reads a VACUUM's launch reports; -1 otherwise.",
        &g_server_log_floor, -1, -1, PANIC, PGC_SUSET,
        GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_NO_RESET_ALL | GUC_DISALLOW_IN_FILE, nullptr, nullptr, nullptr);
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

}  // namespace pgguarantee
