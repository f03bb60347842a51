/*
 * launcher.cpp: the SQL-callable side, run in the caller's backend.
 *
 * run_with_parallel_guarantee checks its arguments and the statement text, sees whether
 * the target can ever be reached, takes a run slot, hands the caller's identity and
 * settings to a new dynamic background worker through a DSM segment, relays the worker's
 * NOTICEs as they come, and returns its result row or re-raises its error.  If the caller
 * stops waiting (cancel, statement_timeout, termination), the segment's detach callback
 * cancels the worker's statement; the worker then runs the cleanup and exits.
 */
#include "pg/errors.hpp"
#include "pg/owner_sql.hpp"
#include "pg/pool.hpp"
#include "pg/shared.hpp"

#include <optional>

extern "C" {
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(run_with_parallel_guarantee);
PG_FUNCTION_INFO_V1(parallel_guarantee_activity);
PG_FUNCTION_INFO_V1(parallel_guarantee_running_chunks);
PG_FUNCTION_INFO_V1(parallel_guarantee_lost);
PG_FUNCTION_INFO_V1(submit_parallel_guarantee);
PG_FUNCTION_INFO_V1(parallel_guarantee_wait_for);
PG_FUNCTION_INFO_V1(run_in_chunks);
PG_FUNCTION_INFO_V1(resume_chunks);
PG_FUNCTION_INFO_V1(submit_chunks);
PG_FUNCTION_INFO_V1(parallel_guarantee_cancel_run);
}

namespace pgguarantee {

namespace {

/* May the current user see this run?  Its own role (or a member), or pg_read_all_stats. */
bool CanSee(Oid run_user);

/* Raised when the module was not preloaded. */
void RequirePreloaded() {
    if (g_shared == nullptr)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("parallel_guarantee must be loaded at server start"),
                 errdetail("Its run slots live in shared memory and its executor hook must be in "
                           "every server process."),
                 errhint("Add parallel_guarantee to shared_preload_libraries in postgresql.conf "
                         "and restart the server.")));
}

/*
 * The longest statement, cleanup, keys query or action a run takes.  Each travels in the run's
 * dynamic shared memory segment and is stored in the history with every run.
 */
constexpr size_t kMaxSqlBytes = 1024 * 1024;

void CheckTextSize(const char *text, const char *argument) {
    size_t bytes = strlen(text);
    if (bytes > kMaxSqlBytes)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("the %s is %zu bytes long, more than the %zu bytes a run accepts", argument, bytes,
                               kMaxSqlBytes),
                        errhint("Put the work in a function or procedure and pass a statement that calls it.")));
}

/* A queue priority above the role's parallel_guarantee.max_priority is the DBA's to grant. */
void CheckPriority(int32 priority) {
    if (priority > g_max_priority && !superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("priority %d is above the %d this role may ask for", priority, g_max_priority),
                        errdetail("A higher priority goes ahead of other roles' runs in the queue."),
                        errhint("A superuser grants it with ALTER ROLE ... SET parallel_guarantee.max_priority = %d; "
                                "priorities at or below 0 need no grant.",
                                priority)));
}

/* Rejects what cannot work in a background worker's own transaction. */
void RejectStatement(const char *argument, const char *what, const char *why) {
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("%s cannot be used in the %s", what, argument), errdetail("%s", why)));
}

bool IsTemp(RangeVar *rel) {
    return rel != nullptr && (rel->relpersistence == RELPERSISTENCE_TEMP ||
                              (rel->schemaname != nullptr && strcmp(rel->schemaname, "pg_temp") == 0));
}

void RejectTemp(const char *argument, RangeVar *rel) {
    if (IsTemp(rel))
        RejectStatement(argument, "temporary objects",
                        "The statement runs in a background worker; its temporary objects would "
                        "vanish when the worker exits. Use an ordinary (or UNLOGGED) table.");
}

/* Parses the text once to check it is one statement we can run; returns its kind. */
StatementKind CheckStatement(const char *sql, const char *argument) {
    List *parsed = NIL;
    MemoryContext outer = CurrentMemoryContext;
    PG_TRY();
    {
        parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
    }
    PG_CATCH();
    {
        /* Point the error at the statement text, not at the caller's query. */
        MemoryContextSwitchTo(outer);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        edata->internalquery = pstrdup(sql);
        edata->internalpos = edata->cursorpos;
        edata->cursorpos = 0;
        edata->context = psprintf("parsing the %s of run_with_parallel_guarantee", argument);
        ReThrowError(edata);
    }
    PG_END_TRY();

    if (list_length(parsed) == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("%s is empty", argument),
                        errhint("Pass the SQL statement to run, for example a CREATE TABLE ... AS "
                                "SELECT.")));
    if (list_length(parsed) > 1)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s must be a single SQL statement, not %d", argument,
                               list_length(parsed)),
                        errhint("Run each statement in its own call, or wrap them in a DO block "
                                "or a procedure.")));

    Node *stmt = linitial_node(RawStmt, parsed)->stmt;
    switch (nodeTag(stmt)) {
        case T_TransactionStmt:
            RejectStatement(argument, "transaction control",
                            "The statement runs in its own transaction, which commits on "
                            "success and rolls back otherwise.");
            break;
        case T_VariableSetStmt:
        case T_DiscardStmt:
            RejectStatement(argument, "SET, RESET or DISCARD",
                            "The worker takes the caller's settings; a setting changed in the "
                            "worker would vanish with it. Use SET before calling the function.");
            break;
        case T_ListenStmt:
        case T_UnlistenStmt:
            RejectStatement(argument, "LISTEN or UNLISTEN",
                            "The worker has no client to deliver notifications to.");
            break;
        case T_PrepareStmt:
        case T_ExecuteStmt:
        case T_DeallocateStmt:
        case T_DeclareCursorStmt:
        case T_FetchStmt:
        case T_ClosePortalStmt:
            RejectStatement(argument, "prepared statements or cursors",
                            "They belong to one session; the worker is another session. Pass "
                            "the statement's SQL text itself.");
            break;
        case T_CopyStmt: {
            auto *copy = castNode(CopyStmt, stmt);
            if (copy->filename == nullptr)
                RejectStatement(argument, "COPY to or from the client",
                                "The statement runs in a background worker with no client. Use "
                                "INSERT ... SELECT or COPY with a server file.");
            return copy->query != nullptr ? StatementKind::kOther : StatementKind::kUtility;
        }
        case T_CreateStmt:
            RejectTemp(argument, castNode(CreateStmt, stmt)->relation);
            return StatementKind::kUtility;
        case T_ViewStmt:
            RejectTemp(argument, castNode(ViewStmt, stmt)->view);
            return StatementKind::kUtility;
        case T_CreateSeqStmt:
            RejectTemp(argument, castNode(CreateSeqStmt, stmt)->sequence);
            return StatementKind::kUtility;
        case T_DoStmt:
        case T_CallStmt:
        case T_ExplainStmt:
            return StatementKind::kOther;
        case T_CreateTableAsStmt: {
            auto *ctas = castNode(CreateTableAsStmt, stmt);
            RejectTemp(argument, ctas->into ? ctas->into->rel : nullptr);
            if (ctas->query != nullptr && IsA(ctas->query, ExecuteStmt))
                RejectStatement(argument, "CREATE TABLE ... AS EXECUTE",
                                "Prepared statements belong to one session.");
            return StatementKind::kQuery;
        }
        case T_SelectStmt: {
            auto *select = castNode(SelectStmt, stmt);
            RejectTemp(argument, select->intoClause ? select->intoClause->rel : nullptr);
            return StatementKind::kQuery;
        }
        case T_RefreshMatViewStmt:
            return castNode(RefreshMatViewStmt, stmt)->concurrent ? StatementKind::kOther
                                                                  : StatementKind::kQuery;
        case T_InsertStmt:
        case T_UpdateStmt:
        case T_DeleteStmt:
#if PG_VERSION_NUM >= 150000
        case T_MergeStmt:
#endif
            return StatementKind::kModifying;
        default:
            break;
    }
    return StatementKind::kUtility;
}

void CheckTargetReachable(const RunOptions &options) {
    Capacity capacity;
    const char *configured = GetConfigOptionResetString("max_parallel_workers");
    capacity.max_parallel_workers = configured ? atoi(configured) : max_parallel_workers;
    capacity.max_worker_processes = max_worker_processes;
    /* Parallel workers and our own runs' workers come and go: only what stays counts. */
    capacity.other_background_workers = OtherBackgroundWorkers(ReadWorkerPool());

    ProblemText problem = CoreProblem([&] { return CheckReachable(options, capacity); });
    if (problem.message == nullptr) return;
    ereport(ERROR, (errcode(ERRCODE_PG_TARGET_UNREACHABLE), errmsg("%s", problem.message),
                    problem.detail ? errdetail("%s", problem.detail) : 0, errhint("%s", problem.hint)));
}

/* The keys query only reads: a plain SELECT, no INTO, no row locks, no change in WITH. */
void CheckKeysQuery(const char *sql) {
    Node *stmt = linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT))->stmt;
    const char *problem = nullptr;
    if (!IsA(stmt, SelectStmt)) {
        problem = "it must be a SELECT";
    } else {
        auto *select = castNode(SelectStmt, stmt);
        if (select->intoClause != nullptr)
            problem = "SELECT ... INTO would create a table; select the keys only";
        else if (select->lockingClause != NIL)
            problem = "FOR UPDATE or FOR SHARE would lock the rows only while the keys are read";
        else if (select->withClause != nullptr) {
            ListCell *lc;
            foreach (lc, select->withClause->ctes) {
                Node *query = lfirst_node(CommonTableExpr, lc)->ctequery;
                if (!IsA(query, SelectStmt)) problem = "an INSERT, UPDATE or DELETE in its WITH would change data";
            }
        }
    }
    if (problem != nullptr)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the keys query must only read the keys: %s", problem),
                        errhint("For example: SELECT id FROM passes WHERE status = 'IN_PROGRESS'.")));
}

struct ParamSearch {
    bool uses_first;
    int highest;
};

bool FindParams(Node *node, void *context) {
    if (node == nullptr) return false;
    if (IsA(node, ParamRef)) {
        auto *search = static_cast<ParamSearch *>(context);
        int number = castNode(ParamRef, node)->number;
        if (number == 1) search->uses_first = true;
        search->highest = Max(search->highest, number);
        return false;
    }
#if PG_VERSION_NUM >= 160000
    return raw_expression_tree_walker(node, FindParams, context);
#else
    auto generic = reinterpret_cast<void (*)(void)>(FindParams);
    return raw_expression_tree_walker(node, reinterpret_cast<bool (*)()>(generic), context);
#endif
}

/*
 * The action must use $1 (the chunk's keys) and no other parameter.  SELECT, INSERT,
 * UPDATE and DELETE are searched for real parameter references (not "$1" in a string or
 * a comment); for anything else the text must at least contain "$1".
 */
void CheckActionParams(const char *sql) {
    Node *stmt = linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT))->stmt;
    ParamSearch search{false, 0};
    bool searched = false;
    if (IsA(stmt, SelectStmt) || IsA(stmt, InsertStmt) || IsA(stmt, UpdateStmt) || IsA(stmt, DeleteStmt)) {
        MemoryContext outer = CurrentMemoryContext;
        PG_TRY();
        {
            (void) FindParams(stmt, &search);
            searched = true;
        }
        PG_CATCH();
        {
            /* A node the walker does not know: fall back to the text check below. */
            MemoryContextSwitchTo(outer);
            FlushErrorState();
        }
        PG_END_TRY();
    }
    if (!searched) search.uses_first = strstr(sql, "$1") != nullptr;
    if (!search.uses_first)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the action must use $1, the array of the chunk's keys"),
                        errhint("For example: UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1).")));
    if (search.highest > 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the action uses $%d, but only $1 (the array of the chunk's keys) is passed",
                               search.highest)));
}

int64 IntervalToMillis(const Interval *interval) {
    double us = static_cast<double>(interval->time) +
                static_cast<double>(interval->day) * USECS_PER_DAY +
                static_cast<double>(interval->month) * DAYS_PER_MONTH * USECS_PER_DAY;
    double ms = us / 1000.0;
    if (ms > static_cast<double>(kMaxRetryDelayMs)) return kMaxRetryDelayMs + 1;
    if (ms < 0) return -1;
    return static_cast<int64>(ms);
}

/*
 * Where each argument is: run_with_parallel_guarantee and submit_parallel_guarantee take
 * the same arguments, but submit has no raise_on_failure (nobody waits to see an error).
 */
struct ArgLayout {
    int statement, cleanup, target, min, attempts, delay, force, raise, wait, max_wait, priority,
        label;
};
constexpr ArgLayout kRunArgs{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
constexpr ArgLayout kSubmitArgs{0, 1, 2, 3, 4, 5, 6, -1, 7, 8, 9, 10};

const char *ArgumentName(const ArgLayout &l, int i) {
    if (i == l.statement) return "statement";
    if (i == l.target) return "target_workers";
    if (i == l.min) return "min_workers";
    if (i == l.attempts) return "max_attempts";
    if (i == l.delay) return "retry_delay";
    if (i == l.force) return "force_workers";
    if (i == l.raise) return "raise_on_failure";
    if (i == l.wait) return "wait_for_slots";
    if (i == l.priority) return "priority";
    return "an argument";
}

/* Everything a run needs, read from the arguments and checked. */
struct RunRequest {
    char *statement;
    char *cleanup;
    char *label;
    RunOptions options;
    bool force_workers;
    bool raise_on_failure;
    bool wait_for_slots;
    int64 max_wait_ms;
    int32 priority;
    StatementKind kind;
    /* Chunked runs. */
    RunMode mode;
    int64 resume_run_id;
    Oid resume_role;            /* set by StartRun once the caller may resume the run */
    int32 chunk_size, max_retries, max_skipped, chunk_workers, notice_every;
};

/* Reads and checks the arguments; an argument an older SQL definition lacks takes its default. */
RunRequest ReadRequest(FunctionCallInfo fcinfo, const ArgLayout &l) {
    auto present = [&](int i) { return i >= 0 && i < PG_NARGS() && !PG_ARGISNULL(i); };
    for (int i = 0; i < PG_NARGS(); i++)
        if (i != l.cleanup && i != l.max_wait && i != l.label && PG_ARGISNULL(i))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("%s must not be NULL", ArgumentName(l, i))));

    RunRequest r{};
    r.mode = RunMode::kGuarantee;
    r.statement = text_to_cstring(PG_GETARG_TEXT_PP(l.statement));
    r.cleanup = present(l.cleanup) ? text_to_cstring(PG_GETARG_TEXT_PP(l.cleanup)) : nullptr;
    r.label = present(l.label) ? text_to_cstring(PG_GETARG_TEXT_PP(l.label)) : nullptr;
    r.options.target_workers = PG_GETARG_INT32(l.target);
    r.options.min_workers = PG_GETARG_INT32(l.min);
    r.options.max_attempts = PG_GETARG_INT32(l.attempts);
    r.options.retry_delay_ms = IntervalToMillis(PG_GETARG_INTERVAL_P(l.delay));
    r.force_workers = PG_GETARG_BOOL(l.force);
    r.raise_on_failure = l.raise >= 0 ? PG_GETARG_BOOL(l.raise) : false;
    r.wait_for_slots = present(l.wait) ? PG_GETARG_BOOL(l.wait) : true;
    r.priority = present(l.priority) ? PG_GETARG_INT32(l.priority) : 0;

    ProblemText problem = CoreProblem([&] { return ValidateOptions(r.options); });
    if (problem.message != nullptr)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", problem.message),
                        errhint("%s", problem.hint)));
    r.max_wait_ms = present(l.max_wait) ? IntervalToMillis(PG_GETARG_INTERVAL_P(l.max_wait))
                                        : DefaultMaxWaitMs(r.options);
    if (r.max_wait_ms < 0 || r.max_wait_ms > kMaxRetryDelayMs)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("max_wait must be between 0 and 1 day"),
                        errhint("max_wait bounds how long the run waits for free workers in all.")));
    if (r.label != nullptr && strlen(r.label) >= static_cast<size_t>(kLabelSize))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("label must be shorter than %d bytes", kLabelSize)));

    CheckTextSize(r.statement, "statement");
    if (r.cleanup != nullptr) CheckTextSize(r.cleanup, "cleanup");
    CheckPriority(r.priority);
    r.kind = CheckStatement(r.statement, "statement");
    if (r.kind == StatementKind::kUtility)
        ereport(ERROR,
                (errcode(ERRCODE_PG_NO_PARALLEL_PLAN),
                 errmsg("the statement runs no query, so it cannot use parallel workers"),
                 errdetail("Only queries (SELECT, CREATE TABLE AS, SELECT INTO, REFRESH "
                           "MATERIALIZED VIEW, COPY (query) TO, and queries run by DO blocks, "
                           "procedures and EXPLAIN ANALYZE) can launch parallel workers through "
                           "a Gather node."),
                 errhint("Run this statement directly, without run_with_parallel_guarantee.")));
    if (r.cleanup != nullptr) (void) CheckStatement(r.cleanup, "cleanup");
    CheckTargetReachable(r.options);
    return r;
}

/* Checks shared by every entry point that starts a run. */
void CheckCanStartRun(const char *function) {
    RequirePreloaded();
    if (g_in_guarantee_worker)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s cannot be called from inside a guaranteed statement", function)));
    if (InSecurityRestrictedOperation())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("%s cannot be called within a security-restricted operation",
                               function)));
    /* A run writes its history (and takes a run id) even when its statement only reads. */
    if (RecoveryInProgress())
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("%s cannot start a run on a standby server", function),
                        errdetail("A run records itself in the extension's history tables, which a server "
                                  "in recovery cannot write."),
                        errhint("Call it on the primary server.")));
    if (XactReadOnly)
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("%s cannot start a run in a read-only transaction", function),
                        errdetail("A run records itself in the extension's history tables, even when its "
                                  "statement only reads."),
                        errhint("Call it in a read-write transaction (BEGIN READ WRITE, or SET "
                                "default_transaction_read_only = off).")));
}

/* What the detach callback needs when the caller stops waiting. */
BackgroundWorkerHandle *g_handle = nullptr;

void CallerDetached(dsm_segment *, Datum arg) {
    auto *run = reinterpret_cast<RunShared *>(DatumGetPointer(arg));
    if (run->caller_finished) return;
    pg_atomic_write_u32(&run->cancel_requested, 1);
    pg_memory_barrier();
    /* The worker cancels its statement, runs the cleanup and exits. */
    if (SignalRunWorker(run->slot_index, run->run_id, SIGINT)) return;
    if (pg_atomic_read_u32(&run->worker_pid) != 0) return;   /* started: it sees the flag */
    /* Not running yet: make sure it never runs anything, and free its slot. */
    if (g_handle != nullptr) TerminateBackgroundWorker(g_handle);
    ReleaseSlot(run->slot_index, run->run_id);
}

/* A copy of a parsed worker message, strings and all, in memory context cxt. */
ErrorData *CopyWorkerError(const ErrorData *from, MemoryContext cxt) {
    MemoryContext old = MemoryContextSwitchTo(cxt);
    auto *to = static_cast<ErrorData *>(palloc(sizeof(ErrorData)));
    *to = *from;
    auto copy = [](const char *text) { return text ? pstrdup(text) : nullptr; };
    to->filename = copy(from->filename);
    to->funcname = copy(from->funcname);
    to->message = copy(from->message);
    to->detail = copy(from->detail);
    to->detail_log = copy(from->detail_log);
    to->hint = copy(from->hint);
    to->context = copy(from->context);
    to->backtrace = copy(from->backtrace);
    to->schema_name = copy(from->schema_name);
    to->table_name = copy(from->table_name);
    to->column_name = copy(from->column_name);
    to->datatype_name = copy(from->datatype_name);
    to->constraint_name = copy(from->constraint_name);
    to->internalquery = copy(from->internalquery);
    to->assoc_context = cxt;
    MemoryContextSwitchTo(old);
    return to;
}

/*
 * Relays one message from the worker: notices at once, the error kept for later.  The
 * message is parsed in `relay`, which the caller resets after each message, so relaying
 * any number of notices takes no more memory than one; the kept error is copied out to
 * the current context.
 */
void HandleWorkerMessage(void *data, Size nbytes, MemoryContext relay, ErrorData **error) {
    MemoryContext outer = MemoryContextSwitchTo(relay);
    StringInfoData msg;
    initStringInfo(&msg);
    appendBinaryStringInfo(&msg, static_cast<const char *>(data), static_cast<int>(nbytes));
    char msgtype = static_cast<char>(pq_getmsgbyte(&msg));
    ErrorData *edata = nullptr;
    if (msgtype == 'E' || msgtype == 'N') {   /* notifications, parameter status: ignored */
        edata = static_cast<ErrorData *>(palloc0(sizeof(ErrorData)));
        pq_parse_errornotice(&msg, edata);
    }
    /* Back in the caller's context before anything is reported (a report may longjmp). */
    MemoryContextSwitchTo(outer);
    if (edata == nullptr) return;
    if (msgtype == 'N' || edata->elevel < ERROR) {
        ThrowErrorData(edata);   /* copies what it reports into ErrorContext */
        return;
    }
    if (*error == nullptr) *error = CopyWorkerError(edata, outer);
}


/* Waits until the run's worker has started; an error if the server is shutting down. */
void WaitForStartup(int slot, int64 run_id, RunShared *run, dsm_segment *seg, bool async) {
    pid_t pid;
    BgwHandleStatus status = WaitForBackgroundWorkerStartup(g_handle, &pid);
    if (status != BGWH_STARTED && status != BGWH_STOPPED) {
        run->caller_finished = true;
        ReleaseSlot(slot, run_id);
        if (async) dsm_unpin_segment(dsm_segment_handle(seg));
        ereport(ERROR, (errcode(ERRCODE_ADMIN_SHUTDOWN),
                        errmsg("could not start a background worker: the server is shutting down")));
    }
}

/* A submitting call failed before returning the run id: stop the run it started. */
void StopUnseenRun(RunShared *run, dsm_segment *seg) {
    run->caller_finished = true;
    pg_atomic_write_u32(&run->cancel_requested, 1);
    pg_memory_barrier();
    if (SignalRunWorker(run->slot_index, run->run_id, SIGINT) || pg_atomic_read_u32(&run->worker_pid) != 0) {
        /* it records the run as cancelled and exits (one not yet in its slot sees the flag) */
    } else if (g_handle != nullptr) {
        pid_t started;
        if (GetBackgroundWorkerPid(g_handle, &started) == BGWH_NOT_YET_STARTED) {
            TerminateBackgroundWorker(g_handle);
            ReleaseSlot(run->slot_index, run->run_id);
            dsm_unpin_segment(dsm_segment_handle(seg));
        }
        /* A worker that has started sees the flag before its first attempt. */
    }
}

/* How often the caller checks that its worker is not waiting for the caller's own locks. */
constexpr long kSelfDeadlockCheckMs = 500;

struct Launched {
    dsm_segment *seg;
    RunShared *run;
    shm_mq_handle *mqh;
};

Launched LaunchWorker(int64 run_id, int slot, const RunRequest &r, Oid extension_namespace,
                      bool async) {
    const char *statement = r.statement;
    const char *cleanup = r.cleanup;
    const char *label = r.label ? r.label : "";
    Size statement_len = strlen(statement) + 1;
    Size cleanup_len = cleanup ? strlen(cleanup) + 1 : 1;
    Size guc_len = EstimateGUCStateSpace();
    Size library_len = EstimateLibraryStateSpace();

    shm_toc_estimator estimator;
    shm_toc_initialize_estimator(&estimator);
    shm_toc_estimate_chunk(&estimator, sizeof(RunShared));
    shm_toc_estimate_chunk(&estimator, statement_len);
    shm_toc_estimate_chunk(&estimator, cleanup_len);
    shm_toc_estimate_chunk(&estimator, guc_len);
    shm_toc_estimate_chunk(&estimator, library_len);
    shm_toc_estimate_chunk(&estimator, kQueueSize);
    shm_toc_estimate_chunk(&estimator, strlen(label) + 1);
    shm_toc_estimate_keys(&estimator, 7);
    Size segsize = shm_toc_estimate(&estimator);

    dsm_segment *seg = dsm_create(segsize, 0);
    shm_toc *toc = shm_toc_create(kRunMagic, dsm_segment_address(seg), segsize);

    auto *run = static_cast<RunShared *>(shm_toc_allocate(toc, sizeof(RunShared)));
    memset(static_cast<void *>(run), 0, sizeof(RunShared));
    run->run_id = run_id;
    run->slot_index = slot;
    run->caller_pid = MyProcPid;
    run->database_id = MyDatabaseId;
    run->authenticated_user_id = GetAuthenticatedUserId();
    run->outer_user_id = GetCurrentRoleId();
    run->role_is_superuser = superuser_arg(OidIsValid(run->outer_user_id) ? run->outer_user_id
                                                                          : GetSessionUserId());
    GetUserIdAndSecContext(&run->current_user_id, &run->sec_context);
    run->options = r.options;
    run->force_workers = r.force_workers;
    run->raise_on_failure = r.raise_on_failure;
    run->wait_for_slots = r.wait_for_slots;
    run->max_wait_ms = r.max_wait_ms;
    run->priority = r.priority;
    run->has_cleanup = cleanup != nullptr;
    run->has_label = r.label != nullptr;
    run->async = async;
    run->extension_namespace = extension_namespace;
    run->kind = r.kind;
    run->mode = r.mode;
    run->chunk_size = r.chunk_size;
    run->max_retries = r.max_retries;
    run->max_skipped = r.max_skipped;
    run->chunk_workers = r.chunk_workers;
    run->notice_every = r.notice_every;
    run->resume_role = r.resume_role;
    pg_atomic_init_u32(&run->chunk_run_failed, 0);
    pg_atomic_init_u32(&run->next_chunk, 0);
    pg_atomic_init_u32(&run->chunks_committed, 0);
    pg_atomic_init_u32(&run->cancel_requested, 0);
    pg_atomic_init_u32(&run->worker_pid, 0);
    pg_atomic_init_u32(&run->recorded, 0);
    run->status = RunStatus::kRunning;
    run->planned = -1;
    run->launched = -1;
    shm_toc_insert(toc, kTocKeyRun, run);

    char *text = static_cast<char *>(shm_toc_allocate(toc, statement_len));
    memcpy(text, statement, statement_len);
    shm_toc_insert(toc, kTocKeyStatement, text);
    text = static_cast<char *>(shm_toc_allocate(toc, cleanup_len));
    if (cleanup) memcpy(text, cleanup, cleanup_len); else text[0] = '\0';
    shm_toc_insert(toc, kTocKeyCleanup, text);

    char *guc = static_cast<char *>(shm_toc_allocate(toc, guc_len));
    SerializeGUCState(guc_len, guc);
    shm_toc_insert(toc, kTocKeyGuc, guc);
    char *library = static_cast<char *>(shm_toc_allocate(toc, library_len));
    SerializeLibraryState(library_len, library);
    shm_toc_insert(toc, kTocKeyLibrary, library);

    text = static_cast<char *>(shm_toc_allocate(toc, strlen(label) + 1));
    memcpy(text, label, strlen(label) + 1);
    shm_toc_insert(toc, kTocKeyLabel, text);

    shm_mq *mq = shm_mq_create(shm_toc_allocate(toc, kQueueSize), kQueueSize);
    shm_toc_insert(toc, kTocKeyQueue, mq);
    if (async) {
        /* Nobody waits: the segment outlives this session; the worker unpins it. */
        dsm_pin_segment(seg);
    } else {
        shm_mq_set_receiver(mq, MyProc);
        /* From here on, the caller stopping for any reason stops the worker. */
        on_dsm_detach(seg, CallerDetached, PointerGetDatum(run));
    }

    char name[BGW_MAXLEN];
    snprintf(name, sizeof name, "parallel_guarantee run %lld for PID %d", static_cast<long long>(run_id),
             MyProcPid);
    bool registered = RegisterRunWorker(seg, name, false, &g_handle);
    if (!registered) {
        g_handle = nullptr;
        ReleaseSlot(slot, run_id);
        run->caller_finished = true;
        if (async) dsm_unpin_segment(dsm_segment_handle(seg));
        ereport(ERROR,
                (errcode(ERRCODE_PG_NO_RUN_SLOT),
                 errmsg("could not start a background worker for the guaranteed run"),
                 errdetail("All %d max_worker_processes slots are in use.", max_worker_processes),
                 errhint("Wait for other background workers to finish, or raise "
                         "max_worker_processes (this needs a server restart).")));
    }

    if (async) {
        /*
         * Return once the run is in the history, so that parallel_guarantee_status() finds
         * it at once; the worker records it right after connecting.  If this call fails
         * meanwhile (cancelled, statement_timeout), its caller never learns the run id:
         * the run is stopped as a synchronous caller's would be, not left to go on unseen.
         */
        PG_TRY();
        {
            WaitForStartup(slot, run_id, run, seg, async);
            for (;;) {
                if (pg_atomic_read_u32(&run->recorded) != 0) break;
                pid_t ignored;
                if (GetBackgroundWorkerPid(g_handle, &ignored) == BGWH_STOPPED) break;
                (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1,
                                 PG_WAIT_EXTENSION);
                ResetLatch(MyLatch);
                CHECK_FOR_INTERRUPTS();
            }
        }
        PG_CATCH();
        {
            if (!run->caller_finished) StopUnseenRun(run, seg);
            PG_RE_THROW();
        }
        PG_END_TRY();
        /* A run the worker could not record (see the server log) never started. */
        if (pg_atomic_read_u32(&run->recorded) == 0) {
            run->caller_finished = true;
            pfree(g_handle);
            g_handle = nullptr;
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("submitted run %lld stopped before it was recorded, so it did not run",
                                   static_cast<long long>(run_id)),
                            errhint("The server log says why (look for run %lld).", static_cast<long long>(run_id))));
        }
        /* The worker owns the segment now (it unpins it); the run goes on without us. */
        run->caller_finished = true;
        pfree(g_handle);
        g_handle = nullptr;
        return Launched{seg, run, nullptr};
    }
    WaitForStartup(slot, run_id, run, seg, async);
    shm_mq_handle *mqh = shm_mq_attach(mq, seg, g_handle);
    return Launched{seg, run, mqh};
}

/*
 * True if the worker waits for a heavyweight lock that this session holds in a conflicting
 * mode: the caller waits for the worker, the worker for the caller's transaction, and the
 * deadlock detector cannot see it (they are not one lock group).  The worker's wait is
 * read without its partition lock; a stale read can only miss, and the caller acts only
 * when two checks in a row agree.
 */
bool WorkerWaitsForMe(pid_t pid) {
    if (pid == 0) return false;
    PGPROC *proc = BackendPidGetProc(pid);
    if (proc == nullptr) return false;
    LOCK *lock = proc->waitLock;
    if (lock == nullptr) return false;
    LOCKTAG tag = lock->tag;
    LOCKMODE wanted = proc->waitLockMode;
    if (tag.locktag_lockmethodid != DEFAULT_LOCKMETHOD || wanted <= 0 || wanted > MaxLockMode)
        return false;
    LockMethod method = GetLocksMethodTable(lock);
    for (LOCKMODE held = 1; held <= MaxLockMode; held++)
        if ((method->conflictTab[wanted] & LOCKBIT_ON(held)) && LockHeldByMeExactly(&tag, held)) return true;
    return false;
}

/* Waits for the worker, relaying its messages; returns its error if it sent one. */
ErrorData *WaitForWorker(shm_mq_handle *mqh, RunShared *run) {
    ErrorData *error = nullptr;
    int self_waits = 0;
    /*
     * Each message is parsed here and the context reset after it.  A child of the current
     * context, so an error that leaves this loop early frees it with its parent.
     */
    MemoryContext relay = AllocSetContextCreate(CurrentMemoryContext, "parallel_guarantee relay",
                                                ALLOCSET_DEFAULT_SIZES);
    for (;;) {
        Size nbytes = 0;
        void *data = nullptr;
        shm_mq_result res = shm_mq_receive(mqh, &nbytes, &data, true);
        if (res == SHM_MQ_SUCCESS) {
            HandleWorkerMessage(data, nbytes, relay, &error);
            MemoryContextReset(relay);
            continue;
        }
        if (res == SHM_MQ_DETACHED) break;
        int events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                               kSelfDeadlockCheckMs, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if ((events & WL_TIMEOUT) != 0) {
            self_waits = WorkerWaitsForMe(static_cast<pid_t>(pg_atomic_read_u32(&run->worker_pid)))
                             ? self_waits + 1
                             : 0;
            if (self_waits >= 2)
                ereport(ERROR,
                        (errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
                         errmsg("the guaranteed statement waits for a lock that the calling "
                                "transaction holds"),
                         errdetail("The statement runs in a background worker, in a transaction "
                                   "of its own, so it waits for the caller, which waits for it."),
                         errhint("Commit the locking statement before the call, or make the "
                                 "call outside the transaction block.")));
        }
    }
    MemoryContextDelete(relay);
    return error;
}

/*
 * resume_chunks: the role of the run to resume, once the caller is known to be allowed to
 * resume it (the run's role, a member of it, a superuser), before any slot is taken: a role
 * that may not resume a run gets 42501 and never holds the run's id in a slot.
 */
Oid CheckMayResume(Oid namespace_oid, int64 run_id) {
    ExtensionTables tables = FindExtensionTables(namespace_oid, "parallel_guarantee_chunk_run_history");
    if (!OidIsValid(tables.owner))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the chunk tables of parallel_guarantee are missing"),
                        errhint("Update the extension: ALTER EXTENSION parallel_guarantee UPDATE;")));
    char *sql = psprintf("SELECT role_oid, status FROM %s.parallel_guarantee_chunk_run_history "
                         "WHERE run_id" PG_OP("=") "$1",
                         tables.schema);
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(run_id)};
    if (SPI_connect() != SPI_OK_CONNECT)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("parallel_guarantee: SPI_connect failed")));
    int rc = OwnerExecute(tables.owner, sql, OwnerParams{1, types, values, nullptr}, nullptr, true);
    Oid role = InvalidOid;
    bool done = false;
    if (rc == SPI_OK_SELECT && SPI_processed == 1) {
        bool isnull;
        role = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        char *status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        done = status != nullptr && strcmp(status, "done") == 0;
    }
    SPI_finish();
    if (!OidIsValid(role) || !CanSee(role))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("there is no chunked run %lld to resume", static_cast<long long>(run_id)),
                        errhint("Run ids come from run_in_chunks and submit_chunks; a run is visible to its "
                                "role, that role's members and pg_read_all_stats.")));
    if (!has_privs_of_role(GetUserId(), role)) {
        char *name = GetUserNameFromId(role, true);
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to resume chunked run %lld", static_cast<long long>(run_id)),
                        errdetail("The run belongs to role \"%s\".", name ? name : "?"),
                        errhint("Only the run's role, its members and superusers may resume it.")));
    }
    if (done)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("chunked run %lld is already done", static_cast<long long>(run_id))));
    return role;
}

/* Takes a run id and a run slot, and starts the worker. */
Launched StartRun(FunctionCallInfo fcinfo, RunRequest &r, bool async, int64 *run_id_out) {
    Oid namespace_oid = get_func_namespace(fcinfo->flinfo->fn_oid);
    Oid sequence = get_relname_relid("parallel_guarantee_run_id_seq", namespace_oid);
    if (!OidIsValid(sequence))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("the sequence parallel_guarantee_run_id_seq is missing"),
                        errhint("Reinstall the extension: DROP EXTENSION parallel_guarantee; "
                                "CREATE EXTENSION parallel_guarantee;")));
    /* A resumed run belongs to the run's role; only those who may act for it get this far. */
    Oid run_role = r.mode == RunMode::kChunksResume ? CheckMayResume(namespace_oid, r.resume_run_id) : GetUserId();
    r.resume_role = run_role;
    int64 run_id = r.mode == RunMode::kChunksResume ? r.resume_run_id : nextval_internal(sequence, false);
    if (r.mode == RunMode::kChunksResume) {
        RunSlot running;
        int index;
        if (FindRun(run_id, &running, &index))
            ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
                            errmsg("chunked run %lld is still in progress", static_cast<long long>(run_id)),
                            errhint("Wait for it, or cancel it with parallel_guarantee_chunk_cancel(%lld).",
                                    static_cast<long long>(run_id))));
    }

    int slot = AllocateSlot(run_id, MyDatabaseId, run_role, r.options, r.label, async);
    if (slot == kTooManyAsync)
        ereport(ERROR, (errcode(ERRCODE_PG_NO_RUN_SLOT),
                        errmsg("%d submitted runs are in progress, the most parallel_guarantee.max_async_runs allows",
                               g_max_async_runs),
                        errhint("Wait for a submitted run to finish, or raise "
                                "parallel_guarantee.max_async_runs.")));
    if (slot == kTooManyForRole || slot == kTooManyAsyncForRole) {
        char *role = GetUserNameFromId(run_role, true);
        bool any = slot == kTooManyForRole;
        ereport(ERROR, (errcode(ERRCODE_PG_ROLE_LIMIT),
                        errmsg("role \"%s\" already has %d %sruns in progress, the most "
                               "parallel_guarantee.%s allows",
                               role ? role : "?", any ? g_max_runs_per_role : g_max_async_runs_per_role,
                               any ? "" : "submitted ", any ? "max_runs_per_role" : "max_async_runs_per_role"),
                        errdetail("Each role gets a share of the run slots, so that no role can take them all."),
                        errhint("Wait for one of the role's runs to finish, or ask the DBA to raise "
                                "parallel_guarantee.%s.",
                                any ? "max_runs_per_role" : "max_async_runs_per_role")));
    }
    if (slot < 0)
        ereport(ERROR, (errcode(ERRCODE_PG_NO_RUN_SLOT),
                        errmsg("all %d run slots of parallel_guarantee are in use", g_shared->max_runs),
                        errhint("Wait for other guaranteed runs to finish, or raise "
                                "parallel_guarantee.max_runs (this needs a server restart).")));
    *run_id_out = run_id;
    /*
     * Whatever fails before the worker is registered (no dynamic shared memory, out of
     * memory) gives the slot back: a slot left "starting" would never be freed.
     */
    if (g_handle != nullptr) {
        pfree(g_handle);
        g_handle = nullptr;
    }
    Launched launched{};
    PG_TRY();
    {
        launched = LaunchWorker(run_id, slot, r, namespace_oid, async);
    }
    PG_CATCH();
    {
        if (g_handle == nullptr) ReleaseSlot(slot, run_id);
        PG_RE_THROW();
    }
    PG_END_TRY();
    return launched;
}

/* The caller's result row type, checked to be the 7 columns this library fills. */
TupleDesc ResultRowType(FunctionCallInfo fcinfo, const char *function) {
    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE || tupdesc->natts != 7)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s must return its 7-column result row", function),
                        errhint("Update the extension: ALTER EXTENSION parallel_guarantee UPDATE;")));
    return BlessTupleDesc(tupdesc);
}

/*
 * Waits for the worker of a synchronous run and re-raises its error, if any, with a
 * context line naming it.  On return the worker has exited and the caller still has the
 * segment mapped (detach it after reading the result).
 */
RunShared *AwaitWorker(const Launched &launched, int64 run_id, const char *worker_name) {
    ErrorData *error = WaitForWorker(launched.mqh, launched.run);
    (void) WaitForBackgroundWorkerShutdown(g_handle);
    RunShared *run = launched.run;
    run->caller_finished = true;
    pfree(g_handle);
    g_handle = nullptr;
    if (error != nullptr) {
        dsm_detach(launched.seg);
        error->elevel = ERROR;
        const char *where = psprintf("%s, run %lld", worker_name, static_cast<long long>(run_id));
        error->context = error->context ? psprintf("%s\n%s", error->context, where) : pstrdup(where);
        ThrowErrorData(error);
    }
    return run;
}

Datum RunWithGuarantee(FunctionCallInfo fcinfo) {
    TimestampTz call_start = GetCurrentTimestamp();
    CheckCanStartRun("run_with_parallel_guarantee");
    RunRequest request = ReadRequest(fcinfo, kRunArgs);
    TupleDesc tupdesc = ResultRowType(fcinfo, "run_with_parallel_guarantee");

    int64 run_id = 0;
    Launched launched = StartRun(fcinfo, request, false, &run_id);
    RunShared *run = AwaitWorker(launched, run_id, "parallel_guarantee worker");
    if (run->status == RunStatus::kRunning) {
        dsm_detach(launched.seg);
        ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
                        errmsg("the worker of guaranteed run %lld exited without a result",
                               static_cast<long long>(run_id)),
                        errhint("Check the server log for what stopped it.")));
    }

    Datum values[7];
    bool nulls[7] = {false, false, false, false, false, false, false};
    values[0] = CStringGetTextDatum(StatusName(run->status));
    values[1] = Int64GetDatum(static_cast<int64>(run->rows));
    values[2] = Int32GetDatum(run->planned);
    values[3] = Int32GetDatum(run->launched);
    nulls[2] = run->planned < 0;
    nulls[3] = run->launched < 0;
    values[4] = Int32GetDatum(run->attempts_used);
    auto *elapsed = static_cast<Interval *>(palloc0(sizeof(Interval)));
    elapsed->time = GetCurrentTimestamp() - call_start;
    values[5] = IntervalPGetDatum(elapsed);
    values[6] = Int64GetDatum(run_id);
    dsm_detach(launched.seg);
    return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* submit_parallel_guarantee: starts a run that goes on without the caller; returns its id. */
Datum SubmitRun(FunctionCallInfo fcinfo) {
    CheckCanStartRun("submit_parallel_guarantee");
    RunRequest request = ReadRequest(fcinfo, kSubmitArgs);
    int64 run_id = 0;
    Launched launched = StartRun(fcinfo, request, true, &run_id);
    dsm_detach(launched.seg);
    PG_RETURN_INT64(run_id);
}


void CheckMayActOn(const RunSlot &slot, const char *what) {
    /* A run the caller may not even see is, to the caller, no run at all. */
    if (!CanSee(slot.user_id))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("there is no guaranteed run %lld that you may see",
                               static_cast<long long>(slot.run_id))));
    if (!has_privs_of_role(GetUserId(), slot.user_id)) {
        char *role = GetUserNameFromId(slot.user_id, true);
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to %s guaranteed run %lld", what,
                               static_cast<long long>(slot.run_id)),
                        errdetail("The run belongs to role \"%s\".", role ? role : "?"),
                        errhint("Only that role, its members and superusers may %s it.", what)));
    }
}

/* parallel_guarantee_wait_for: true once the run is no longer in progress, false on timeout. */
Datum WaitFor(FunctionCallInfo fcinfo) {
    RequirePreloaded();
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("run_id must not be NULL")));
    int64 run_id = PG_GETARG_INT64(0);
    int64 timeout_ms = -1;
    if (!PG_ARGISNULL(1)) {
        timeout_ms = IntervalToMillis(PG_GETARG_INTERVAL_P(1));
        if (timeout_ms < 0)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("timeout must not be negative")));
    }
    RunSlot slot;
    int index;
    if (!FindRun(run_id, &slot, &index)) PG_RETURN_BOOL(true);
    CheckMayActOn(slot, "wait on");
    TimestampTz deadline = timeout_ms >= 0 ? TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms)
                                           : DT_NOEND;
    TimestampTz next_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kSelfDeadlockCheckMs);
    int self_waits = 0;
    for (;;) {
        if (!FindRun(run_id, &slot, &index)) PG_RETURN_BOOL(true);
        TimestampTz now = GetCurrentTimestamp();
        if (now >= deadline) PG_RETURN_BOOL(false);
        if (now >= next_check) {
            /* Waiting on a run whose statement waits for our own lock would never end. */
            self_waits = WorkerWaitsForMe(slot.worker_pid) ? self_waits + 1 : 0;
            if (self_waits >= 2)
                ereport(ERROR, (errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
                                errmsg("run %lld waits for a lock that this transaction holds, so "
                                       "waiting for it would never end",
                                       static_cast<long long>(run_id)),
                                errhint("Commit or roll back first, then wait for the run.")));
            next_check = TimestampTzPlusMilliseconds(now, kSelfDeadlockCheckMs);
        }
        long sleep_ms = 10;
        if (deadline != DT_NOEND) sleep_ms = Max(1L, Min(sleep_ms, TimestampDifferenceMilliseconds(now, deadline)));
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

/* How long a too-late cancel waits for the run to record its end. */
constexpr int kTooLateWaitMs = 10000;

/*
 * parallel_guarantee_cancel_run: true if the run was in progress and is now asked to stop.
 * A run already committing its statement cannot be stopped: we wait until it has recorded
 * how it ended, so that the caller reads its final status, and answer false.
 */
Datum CancelRun(FunctionCallInfo fcinfo) {
    RequirePreloaded();
    int64 run_id = PG_GETARG_INT64(0);
    RunSlot slot;
    int index;
    if (!FindRun(run_id, &slot, &index)) PG_RETURN_BOOL(false);
    CheckMayActOn(slot, "cancel");
    CancelAnswer answer = RequestCancel(run_id);
    if (answer == CancelAnswer::kTooLate && slot.worker_pid != MyProcPid) {
        /*
         * Bounded: a commit can wait for a synchronous standby, or for a lock our own
         * transaction holds (a deferred trigger), and we must not wait for it forever.
         */
        TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kTooLateWaitMs);
        while (FindRun(run_id, &slot, &index)) {
            if (GetCurrentTimestamp() >= until) {
                ereport(NOTICE, (errmsg("guaranteed run %lld is committing its statement: too late to cancel it",
                                        static_cast<long long>(run_id))));
                break;
            }
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 5,
                             PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
        }
    }
    PG_RETURN_BOOL(answer == CancelAnswer::kRequested);
}

/* run_in_chunks / resume_chunks: starts the coordinator, relays its NOTICEs, returns the row. */
Datum RunChunks(FunctionCallInfo fcinfo, bool resume, bool async) {
    TimestampTz call_start = GetCurrentTimestamp();
    const char *function = async ? "submit_chunks" : resume ? "resume_chunks" : "run_in_chunks";
    CheckCanStartRun(function);
    static const char *const kChunkArgs[] = {"keys", "action", "chunk_size", "max_retries",
                                             "max_skipped", "workers", "notice_every"};
    static const char *const kResumeArgs[] = {"run_id", "notice_every"};
    for (int i = 0; i < PG_NARGS(); i++)
        if (PG_ARGISNULL(i) && (resume || i != 7))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("%s must not be NULL", resume ? kResumeArgs[i] : kChunkArgs[i])));

    RunRequest r{};
    r.options.target_workers = 1;
    r.options.min_workers = 0;
    r.options.max_attempts = 1;
    r.kind = StatementKind::kOther;
    if (resume) {
        r.mode = RunMode::kChunksResume;
        r.resume_run_id = PG_GETARG_INT64(0);
        r.notice_every = PG_GETARG_INT32(1);
        r.statement = pstrdup("");
        r.cleanup = pstrdup("");
        r.chunk_workers = 1;
    } else {
        r.mode = RunMode::kChunks;
        r.statement = text_to_cstring(PG_GETARG_TEXT_PP(0));
        r.cleanup = text_to_cstring(PG_GETARG_TEXT_PP(1));
        r.chunk_size = PG_GETARG_INT32(2);
        r.max_retries = PG_GETARG_INT32(3);
        r.max_skipped = PG_GETARG_INT32(4);
        r.chunk_workers = PG_GETARG_INT32(5);
        r.notice_every = PG_GETARG_INT32(6);
        r.label = PG_ARGISNULL(7) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(7));
        if (r.chunk_size < 1 || r.chunk_size > 1000000)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("chunk_size must be between 1 and 1000000, not %d", r.chunk_size),
                            errhint("A chunk is the set of keys one transaction of the action handles.")));
        if (r.max_retries < 0 || r.max_retries > 100)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("max_retries must be between 0 and 100, not %d", r.max_retries)));
        if (r.max_skipped < 0)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("max_skipped must not be negative, not %d", r.max_skipped)));
        if (r.chunk_workers < 1 || r.chunk_workers > 64)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("workers must be between 1 and 64, not %d", r.chunk_workers)));
        if (r.label != nullptr && strlen(r.label) >= static_cast<size_t>(kLabelSize))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("label must be shorter than %d bytes", kLabelSize)));
        CheckTextSize(r.statement, "keys query");
        CheckTextSize(r.cleanup, "action");
        if (CheckStatement(r.statement, "keys query") != StatementKind::kQuery)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("the keys query must be a SELECT that returns the keys"),
                            errhint("For example: SELECT id FROM passes WHERE status = 'IN_PROGRESS'.")));
        CheckKeysQuery(r.statement);
        (void) CheckStatement(r.cleanup, "action");
        CheckActionParams(r.cleanup);
    }
    if (r.notice_every < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("notice_every must not be negative, not %d", r.notice_every)));

    int64 run_id = 0;
    if (async) {
        /* Nobody waits: the run goes on after this session; its id is returned at once. */
        Launched launched = StartRun(fcinfo, r, true, &run_id);
        dsm_detach(launched.seg);
        PG_RETURN_INT64(run_id);
    }
    TupleDesc tupdesc = ResultRowType(fcinfo, function);
    Launched launched = StartRun(fcinfo, r, false, &run_id);
    RunShared *run = AwaitWorker(launched, run_id, "parallel_guarantee chunk worker");
    if (run->chunk_status == ChunkStatus::kRunning) {
        dsm_detach(launched.seg);
        ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
                        errmsg("the worker of chunked run %lld exited without a result",
                               static_cast<long long>(run_id)),
                        errhint("Check the server log; resume_chunks(%lld) continues the run.",
                                static_cast<long long>(run_id))));
    }
    static const char *const kStatus[] = {"running", "done", "failed", "cancelled"};
    Datum values[7];
    bool nulls[7] = {false, false, false, false, false, false, false};
    values[0] = Int64GetDatum(run_id);
    values[1] = CStringGetTextDatum(kStatus[static_cast<int>(run->chunk_status)]);
    values[2] = Int32GetDatum(run->chunks_total);
    values[3] = Int32GetDatum(run->chunks_done);
    values[4] = Int32GetDatum(run->chunks_skipped);
    values[5] = Int64GetDatum(static_cast<int64>(run->rows));
    auto *elapsed = static_cast<Interval *>(palloc0(sizeof(Interval)));
    elapsed->time = GetCurrentTimestamp() - call_start;
    values[6] = IntervalPGetDatum(elapsed);
    dsm_detach(launched.seg);
    return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* May the current user see this run?  Its own role (or a member), or pg_read_all_stats. */
bool CanSee(Oid run_user) {
    return has_privs_of_role(GetUserId(), run_user) ||
           has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

/*
 * Sets up a set-returning function's result as a tuplestore (the caller puts its rows in
 * it) and copies the run slots, taken under the lock in one go; *n is 0 without shared
 * memory.
 */
RunSlot *BeginSlotScan(FunctionCallInfo fcinfo, const char *function, Tuplestorestate **store,
                       TupleDesc *tupdesc, int *n) {
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    if (rsinfo == nullptr || !IsA(rsinfo, ReturnSetInfo) ||
        (rsinfo->allowedModes & SFRM_Materialize) == 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("%s must be called in FROM", function)));
    if (get_call_result_type(fcinfo, nullptr, tupdesc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("return type must be a row type")));
    MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
    *store = tuplestore_begin_heap(true, false, work_mem);
    rsinfo->returnMode = SFRM_Materialize;
    rsinfo->setResult = *store;
    rsinfo->setDesc = CreateTupleDescCopy(*tupdesc);
    MemoryContextSwitchTo(old);
    *n = g_shared == nullptr ? 0 : g_shared->max_runs;
    if (*n == 0) return nullptr;
    auto *copy = static_cast<RunSlot *>(palloc(sizeof(RunSlot) * *n));
    LWLockAcquire(g_shared->lock, LW_SHARED);
    memcpy(static_cast<void *>(copy), g_shared->slots, sizeof(RunSlot) * *n);
    LWLockRelease(g_shared->lock);
    return copy;
}

Datum Activity(FunctionCallInfo fcinfo) {
    Tuplestorestate *store;
    TupleDesc tupdesc;
    int n;
    RunSlot *copy = BeginSlotScan(fcinfo, "parallel_guarantee_activity", &store, &tupdesc, &n);
    for (int i = 0; i < n; i++) {
        RunSlot *s = &copy[i];
        if (s->run_id == 0 || !CanSee(s->user_id)) continue;
        Datum values[17];
        bool nulls[17] = {};
        values[0] = Int64GetDatum(s->run_id);
        values[1] = Int32GetDatum(s->caller_pid);
        values[2] = Int32GetDatum(s->worker_pid);
        nulls[2] = s->worker_pid == 0;
        values[3] = ObjectIdGetDatum(s->database_id);
        values[4] = ObjectIdGetDatum(s->user_id);
        values[5] = CStringGetTextDatum(SlotStateName(s->state));
        values[6] = Int32GetDatum(s->attempt);
        values[7] = Int32GetDatum(s->max_attempts);
        values[8] = Int32GetDatum(s->target_workers);
        values[9] = Int32GetDatum(s->min_workers);
        values[10] = Int32GetDatum(s->planned);
        nulls[10] = s->planned < 0;
        values[11] = Int32GetDatum(s->launched);
        nulls[11] = s->launched < 0;
        values[12] = TimestampTzGetDatum(s->started_at);
        values[13] = TimestampTzGetDatum(s->state_since);
        int position = 0;
        if (s->waiting) {
            position = 1;
            for (int j = 0; j < n; j++) {
                const RunSlot *o = &copy[j];
                if (j != i && o->run_id != 0 && o->waiting &&
                    (o->priority > s->priority || (o->priority == s->priority && o->ticket < s->ticket)))
                    position++;
            }
        }
        values[14] = Int32GetDatum(position);
        nulls[14] = position == 0;
        values[15] = Int32GetDatum(s->priority);
        values[16] = CStringGetTextDatum(s->label);
        nulls[16] = s->label[0] == '\0';
        tuplestore_putvalues(store, tupdesc, values, nulls);
    }
    return (Datum) 0;
}

/*
 * True if a run the caller may see is recorded as running but no worker has it any more
 * (killed, server restarted): lost.  The run's row is read again under a new snapshot
 * (READ COMMITTED): a worker records its run's end before it lets go of the run, so a run
 * that ended after the caller's snapshot is not called lost.  Under REPEATABLE READ and
 * SERIALIZABLE the row cannot change within the transaction, and the answer is false.
 */
Datum RunLost(FunctionCallInfo fcinfo) {
    int64 run_id = PG_GETARG_INT64(0);
    bool chunked = PG_GETARG_BOOL(1);
    /*
     * Without the preloaded library there are no slots to ask; on a standby the slots are
     * empty while the primary runs: neither can tell a lost run.
     */
    if (g_shared == nullptr || RecoveryInProgress() || IsolationUsesXactSnapshot()) PG_RETURN_BOOL(false);
    /* Declared PARALLEL UNSAFE; called anyway in parallel mode, it cannot take a new snapshot. */
    if (IsInParallelMode()) PG_RETURN_BOOL(false);
    RunSlot running;
    int index;
    if (FindRun(run_id, &running, &index)) PG_RETURN_BOOL(false);
    const char *table = chunked ? "parallel_guarantee_chunk_run_history" : "parallel_guarantee_run_history";
    ExtensionTables tables = FindExtensionTables(get_func_namespace(fcinfo->flinfo->fn_oid), table);
    if (!OidIsValid(tables.owner)) PG_RETURN_BOOL(false);

    char *sql = psprintf("SELECT role_oid FROM %s.%s WHERE run_id" PG_OP("=") "$1 AND status" PG_OP("=") "'running'",
                         tables.schema, table);
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(run_id)};
    if (SPI_connect() != SPI_OK_CONNECT)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("parallel_guarantee: SPI_connect failed")));
    /* Read-only, on the latest snapshot: no command counter step inside the caller's query. */
    int rc = OwnerExecute(tables.owner, sql, OwnerParams{1, types, values, nullptr}, nullptr, true);
    Oid role = InvalidOid;
    if (rc == SPI_OK_SELECT && SPI_processed == 1) {
        bool isnull;
        role = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    SPI_finish();
    /* The answer, like the run, only for those who may see it. */
    PG_RETURN_BOOL(OidIsValid(role) && CanSee(role));
}

/*
 * The chunks the workers of chunked runs in this database are on, for the runs the caller
 * may see (the same rule as parallel_guarantee_activity).
 */
Datum RunningChunks(FunctionCallInfo fcinfo) {
    Tuplestorestate *store;
    TupleDesc tupdesc;
    int n;
    RunSlot *copy = BeginSlotScan(fcinfo, "parallel_guarantee_running_chunks", &store, &tupdesc, &n);
    for (int i = 0; i < n; i++) {
        const RunSlot *s = &copy[i];
        if (s->run_id == 0 || s->database_id != MyDatabaseId || !CanSee(s->user_id)) continue;
        for (int w = 0; w < kMaxChunkWorkers; w++) {
            if (s->chunk_no[w] == 0) continue;
            Datum values[4] = {Int64GetDatum(s->run_id), Int32GetDatum(s->chunk_no[w]),
                               Int32GetDatum(s->chunk_pid[w]), TimestampTzGetDatum(s->chunk_since[w])};
            bool nulls[4] = {false, false, false, false};
            tuplestore_putvalues(store, tupdesc, values, nulls);
        }
    }
    return (Datum) 0;
}

}  // namespace
}  // namespace pgguarantee

extern "C" Datum run_with_parallel_guarantee(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::RunWithGuarantee(fcinfo); });
}

extern "C" Datum run_in_chunks(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::RunChunks(fcinfo, false, false); });
}

extern "C" Datum submit_chunks(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::RunChunks(fcinfo, false, true); });
}

extern "C" Datum resume_chunks(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::RunChunks(fcinfo, true, false); });
}

extern "C" Datum parallel_guarantee_wait_for(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::WaitFor(fcinfo); });
}

extern "C" Datum parallel_guarantee_cancel_run(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::CancelRun(fcinfo); });
}

extern "C" Datum submit_parallel_guarantee(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::SubmitRun(fcinfo); });
}

extern "C" Datum parallel_guarantee_activity(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::Activity(fcinfo); });
}

extern "C" Datum parallel_guarantee_lost(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::RunLost(fcinfo); });
}

extern "C" Datum parallel_guarantee_running_chunks(PG_FUNCTION_ARGS) {
    return pgguarantee::CatchingCall([&]() { return pgguarantee::RunningChunks(fcinfo); });
}
