/*
 * arguments.cpp: see arguments.hpp.  The statement texts are parsed once here, only to
 * refuse what cannot run in a background worker with a clear error; the worker parses and
 * plans them again as the caller.
 */
#include "pg/api/arguments.hpp"

#include "pg/settings.hpp"
#include "pg/shmem/pool.hpp"
#include "pg/shmem/run_slots.hpp"

#include <cstring>

namespace pgguarantee {

namespace {

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

void RejectNestedRun(Node *query, const char *argument);

/*
 * Parses the text once to check it is one statement we can run; returns its kind.  Long, but
 * a table: one case for each kind of statement that cannot run in a worker, or runs no query.
 */
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
        case T_IndexStmt: {
            auto *index = castNode(IndexStmt, stmt);
            RejectTemp(argument, index->relation);
            if (index->concurrent) {
                if (strcmp(argument, "statement") != 0)
                    RejectStatement(argument, "CREATE INDEX CONCURRENTLY",
                                    "It cannot run inside a transaction, and this runs in one.");
                return StatementKind::kConcurrentBuild;
            }
            return StatementKind::kMaintenance;
        }
        case T_ReindexStmt: {
            auto *reindex = castNode(ReindexStmt, stmt);
            bool concurrently = false;
            ListCell *lc;
            foreach (lc, reindex->params) {
                auto *opt = lfirst_node(DefElem, lc);
                if (strcmp(opt->defname, "concurrently") == 0 && defGetBoolean(opt)) concurrently = true;
            }
            if (reindex->kind != REINDEX_OBJECT_INDEX && reindex->kind != REINDEX_OBJECT_TABLE)
                RejectStatement(argument, "REINDEX SCHEMA, DATABASE or SYSTEM",
                                "They commit table by table, so they cannot run inside a run's transaction. "
                                "Reindex each table with REINDEX TABLE, one call per table.");
            if (concurrently && strcmp(argument, "statement") != 0)
                RejectStatement(argument, "REINDEX CONCURRENTLY", "It cannot run inside a transaction, and this runs in one.");
            return concurrently ? StatementKind::kConcurrentBuild : StatementKind::kMaintenance;
        }
        case T_VacuumStmt: {
            auto *vacuum = castNode(VacuumStmt, stmt);
            if (!vacuum->is_vacuumcmd) return StatementKind::kUtility;   /* ANALYZE: one process */
            if (strcmp(argument, "statement") != 0)
                RejectStatement(argument, "VACUUM",
                                "VACUUM cannot run inside a transaction, and this runs in one. Only the "
                                "statement of run_with_parallel_guarantee may be a VACUUM.");
            ListCell *lc;
            foreach (lc, vacuum->options) {
                auto *opt = lfirst_node(DefElem, lc);
                if (strcmp(opt->defname, "full") == 0 && (opt->arg == nullptr || defGetBoolean(opt)))
                    RejectStatement(argument, "VACUUM FULL",
                                    "It rewrites the table in one process; only a plain VACUUM vacuums "
                                    "indexes with parallel workers. Run VACUUM FULL directly.");
                if (strcmp(opt->defname, "parallel") == 0 && opt->arg != nullptr && defGetInt32(opt) == 0)
                    RejectStatement(argument, "VACUUM (PARALLEL 0)", "It asks for no parallel worker.");
            }
            if (vacuum->rels == NIL)
                RejectStatement(argument, "VACUUM without a table",
                                "The degree is checked for each table before the VACUUM starts: name them, "
                                "as in VACUUM (PARALLEL 4) orders.");
            return StatementKind::kVacuum;
        }
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
            RejectNestedRun(ctas->query, argument);
            return StatementKind::kQuery;
        }
        case T_SelectStmt: {
            auto *select = castNode(SelectStmt, stmt);
            RejectTemp(argument, select->intoClause ? select->intoClause->rel : nullptr);
            RejectNestedRun(stmt, argument);
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
            RejectNestedRun(stmt, argument);
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

/* raw_expression_tree_walker over a raw parse tree; before PostgreSQL 16 it takes bool (*)(). */
bool WalkRaw(Node *node, bool (*walker)(Node *, void *), void *context) {
#if PG_VERSION_NUM >= 160000
    return raw_expression_tree_walker(node, walker, context);
#else
    auto generic = reinterpret_cast<void (*)(void)>(walker);
    return raw_expression_tree_walker(node, reinterpret_cast<bool (*)()>(generic), context);
#endif
}

bool FindParams(Node *node, void *context) {
    if (node == nullptr) return false;
    if (IsA(node, ParamRef)) {
        auto *search = static_cast<ParamSearch *>(context);
        int number = castNode(ParamRef, node)->number;
        if (number == 1) search->uses_first = true;
        search->highest = Max(search->highest, number);
        return false;
    }
    return WalkRaw(node, FindParams, context);
}

/* The functions that start a run: a run's statement cannot call them (its worker cannot start a run). */
const char *const kRunFunctions[] = {"run_with_parallel_guarantee", "submit_parallel_guarantee", "run_in_chunks",
                                     "submit_chunks", "resume_chunks"};

bool FindRunCall(Node *node, void *context) {
    if (node == nullptr) return false;
    if (IsA(node, FuncCall)) {
        const char *name = strVal(llast(castNode(FuncCall, node)->funcname));
        for (const char *function : kRunFunctions)
            if (strcmp(name, function) == 0) {
                *static_cast<const char **>(context) = function;
                return true;
            }
    }
    return WalkRaw(node, FindRunCall, context);
}

/*
 * A query that calls a function starting a run would start it in the run's worker, which
 * cannot: refused (0A000) before anything runs.  A call hidden in a DO block or a function
 * is refused by that function itself, when the worker runs it.
 */
void RejectNestedRun(Node *query, const char *argument) {
    const char *volatile found = nullptr;
    MemoryContext outer = CurrentMemoryContext;
    PG_TRY();
    {
        const char *function = nullptr;
        if (FindRunCall(query, &function)) found = function;
    }
    PG_CATCH();
    {
        /* A node the walker does not know: the worker's own check still refuses the call. */
        MemoryContextSwitchTo(outer);
        FlushErrorState();
    }
    PG_END_TRY();
    if (found != nullptr)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("the %s calls %s, which cannot run inside a run", argument, found),
                        errdetail("The %s runs in a background worker, which cannot start another run.", argument),
                        errhint("Call the functions one after the other instead.")));
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

/*
 * retry_sqlstates: the SQLSTATEs a failing statement is retried on (cleanup, retry_delay, an
 * attempt spent), like a short launch.  Class 57 (operator intervention: cancels, shutdown)
 * is never retried: a cancel must stop the run.
 */
void ReadRetrySqlstates(ArrayType *array, RunRequest *r) {
    if (ARR_NDIM(array) > 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("retry_sqlstates must be a one-dimensional array of SQLSTATEs")));
    Datum *items;
    bool *nulls;
    int n;
    deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &n);
    if (n > kMaxRetrySqlstates)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("retry_sqlstates lists %d SQLSTATEs, more than the %d allowed", n,
                               kMaxRetrySqlstates)));
    r->n_retry_sqlstates = 0;
    for (int i = 0; i < n; i++) {
        if (nulls[i])
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("retry_sqlstates must not contain NULL")));
        char *code = text_to_cstring(DatumGetTextPP(items[i]));
        bool valid = CatchingCall([&] { return IsSqlstate(std::string(code)); });
        if (!valid)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("retry_sqlstates: \"%s\" is not a SQLSTATE", code),
                            errhint("A SQLSTATE has five characters, digits and capital letters, such as "
                                    "'40001' (serialization failure) or '40P01' (deadlock detected).")));
        if (code[0] == '5' && code[1] == '7')
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("retry_sqlstates: %s cannot be retried", code),
                            errdetail("Class 57 means the statement was cancelled or the server is shutting "
                                      "down: the run must stop, not retry.")));
        r->retry_sqlstates[r->n_retry_sqlstates++] = MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4]);
    }
}

/* run_in_chunks / submit_chunks (label is their one optional argument) and resume_chunks. */
constexpr int kChunkLabelArg = 7;

}  // namespace

/* Raised when the module was not preloaded. */
void RequirePreloaded() {
    if (!RunSlotsReady())
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("parallel_guarantee must be loaded at server start"),
                 errdetail("Its run slots live in shared memory and its executor hook must be in "
                           "every server process."),
                 errhint("Add parallel_guarantee to shared_preload_libraries in postgresql.conf "
                         "and restart the server.")));
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

/* Reads and checks the arguments; an argument an older SQL definition lacks takes its default. */
RunRequest ReadRequest(FunctionCallInfo fcinfo, const ArgLayout &l) {
    auto present = [&](int i) { return i >= 0 && i < PG_NARGS() && !PG_ARGISNULL(i); };
    for (int i = 0; i < PG_NARGS(); i++)
        if (i != l.cleanup && i != l.max_wait && i != l.label && i != l.retry_sqlstates && PG_ARGISNULL(i))
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
    if (r.kind == StatementKind::kUtility) RaiseRunsNoQuery();
    if (r.cleanup != nullptr) (void) CheckStatement(r.cleanup, "cleanup");
    CheckTargetReachable(r.options);
    if (present(l.retry_sqlstates)) ReadRetrySqlstates(PG_GETARG_ARRAYTYPE_P(l.retry_sqlstates), &r);
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

RunRequest ReadChunkRequest(FunctionCallInfo fcinfo, bool resume) {
    static const char *const kChunkArgs[] = {"keys", "action", "chunk_size", "max_retries",
                                             "max_skipped", "workers", "notice_every"};
    static const char *const kResumeArgs[] = {"run_id", "notice_every"};
    for (int i = 0; i < PG_NARGS(); i++)
        if (PG_ARGISNULL(i) && (resume || i != kChunkLabelArg))
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
        r.label = PG_ARGISNULL(kChunkLabelArg) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(kChunkLabelArg));
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
        if (r.chunk_workers < 1 || r.chunk_workers > kMaxChunkWorkers)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("workers must be between 1 and %d, not %d", kMaxChunkWorkers, r.chunk_workers)));
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

    return r;
}

}  // namespace pgguarantee
