/*
 * spi_xact.cpp: see spi_xact.hpp.
 */
#include "pg/spi_xact.hpp"

extern "C" {
#include "tcop/pquery.h"
#include "utils/portal.h"
}

extern "C" {
#include "catalog/pg_class.h"
#include "utils/syscache.h"
}

namespace pgguarantee {

namespace {

/* Transient failures of a bookkeeping transaction, worth another try. */
bool Transient(int sqlerrcode) {
    return sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE || sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
           sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
}
constexpr int kMaxTries = 5;

/* The session settings bookkeeping statements run with, whatever the caller's session says. */
void PinSettings() {
    struct Pinned {
        const char *name;
        const char *value;
    };
    static const Pinned kPinned[] = {
        {"search_path", "pg_catalog, pg_temp"},
        {"lock_timeout", "0"},
        {"statement_timeout", "0"},
        {"client_min_messages", "warning"},
        /* A session with a low jit_above_cost must not compile the bookkeeping (10 ms a statement). */
        {"jit", "off"},
    };
    for (const Pinned &p : kPinned)
        (void) set_config_option(p.name, p.value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

}  // namespace

/* The frame's start, with the bookkeeping's own transaction settings when `pinned`. */
static void BeginFrame(const char *activity, bool pinned) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    if (pinned) {
        /* The caller's defaults (serializable, read-only, deferrable) are not the bookkeeping's. */
        XactIsoLevel = XACT_READ_COMMITTED;
        XactReadOnly = false;
        XactDeferrable = false;
    }
    PushActiveSnapshot(GetTransactionSnapshot());
    if (activity != nullptr) pgstat_report_activity(STATE_RUNNING, activity);
    if (SPI_connect() != SPI_OK_CONNECT)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("parallel_guarantee: SPI_connect failed")));
}

void BeginSpiTransaction(const char *activity) {
    BeginFrame(activity, false);
}

void EndSpiStatement() {
    SPI_finish();
    PopActiveSnapshot();
}

ExtensionTables FindExtensionTables(Oid schema, const char *table) {
    ExtensionTables tables{InvalidOid, nullptr};
    char *name = get_namespace_name(schema);
    Oid relid = name != nullptr ? get_relname_relid(table, schema) : InvalidOid;
    if (!OidIsValid(relid)) return tables;
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple)) return tables;
    tables.owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    tables.schema = MemoryContextStrdup(TopMemoryContext, quote_identifier(name));
    return tables;
}

int OwnerExecute(Oid owner, const char *sql, const OwnerParams &params, SPIPlanPtr *keep, bool latest_read_only) {
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    /* An error aborts the transaction, which restores the role and the settings too. */
    int nest = NewGUCNestLevel();
    SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    PinSettings();
    Oid *types = const_cast<Oid *>(params.types);
    SPIPlanPtr plan = keep != nullptr ? *keep : nullptr;
    if (plan == nullptr && (keep != nullptr || latest_read_only)) {
        plan = SPI_prepare(sql, params.nargs, types);
        if (plan == nullptr)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("parallel_guarantee: could not prepare a bookkeeping statement: %s",
                                   SPI_result_code_string(SPI_result))));
        if (keep != nullptr) {
            if (SPI_keepplan(plan) != 0)
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("parallel_guarantee: could not keep a bookkeeping statement's plan")));
            *keep = plan;
        }
    }
    int rc;
    if (latest_read_only)
        rc = SPI_execute_snapshot(plan, params.values, params.nulls, GetLatestSnapshot(), InvalidSnapshot, true,
                                  false, 0);
    else if (plan != nullptr)
        rc = SPI_execute_plan(plan, params.values, params.nulls, false, 0);
    else
        rc = SPI_execute_with_args(sql, params.nargs, types, params.values, params.nulls, false, 0);
    AtEOXact_GUC(true, nest);
    SetUserIdAndSecContext(saved_user, saved_context);
    return rc;
}

bool OwnerTransactionImpl(const char *what, OnFailure on_failure, bool hold_cancel, void (*body)(void *),
                          void *arg) {
    /*
     * An ERROR zeroes both hold-off counts before it reaches PG_CATCH: they are restored
     * from these, never decremented past what was held (which would wrap the count and leave
     * the process deaf to every later cancel).
     */
    const uint32 saved_interrupt_holdoff = InterruptHoldoffCount;
    const uint32 saved_cancel_holdoff = QueryCancelHoldoffCount;
    MemoryContext outer = CurrentMemoryContext;
    ErrorData *volatile failure = nullptr;
    volatile bool done = false;
    if (hold_cancel) HOLD_CANCEL_INTERRUPTS();
    for (volatile int attempt = 1; !done && failure == nullptr; attempt = attempt + 1) {
        volatile bool retry = false;
        PG_TRY();
        {
            BeginFrame(nullptr, true);
            body(arg);
            EndSpiStatement();
            CommitTransactionCommand();
            done = true;
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(outer);
            ErrorData *edata = CopyErrorData();
            FlushErrorState();
            AbortCurrentTransaction();
            InterruptHoldoffCount = saved_interrupt_holdoff;
            QueryCancelHoldoffCount = saved_cancel_holdoff + (hold_cancel ? 1 : 0);
            if (Transient(edata->sqlerrcode) && attempt < kMaxTries) {
                FreeErrorData(edata);
                retry = true;
            } else {
                failure = edata;
            }
        }
        PG_END_TRY();
        MemoryContextSwitchTo(outer);
        if (retry) {
            /* A short pause, longer each time, for the conflicting transaction to finish. */
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10L * attempt,
                             PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        }
    }
    if (hold_cancel) RESUME_CANCEL_INTERRUPTS();
    if (failure == nullptr) return true;
    if (on_failure == OnFailure::kRaise) ReThrowError(failure);
    ereport(WARNING, (errcode(failure->sqlerrcode),
                      errmsg("parallel_guarantee: could not %s: %s", what, failure->message)));
    FreeErrorData(failure);
    return false;
}

namespace {
MemoryContext g_toplevel_context = nullptr;
}  // namespace

/* Runs one statement as a client's command runs: at the top level, committing at the end. */
uint64 RunAtTopLevel(const char *sql) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    pgstat_report_activity(STATE_RUNNING, sql);
    /* The statement's own transactions come and go: its trees live in a context of ours. */
    g_toplevel_context = AllocSetContextCreate(TopMemoryContext, "parallel_guarantee top-level statement",
                                               ALLOCSET_DEFAULT_SIZES);
    MemoryContext outer = MemoryContextSwitchTo(g_toplevel_context);
    RawStmt *raw = linitial_node(RawStmt, pg_parse_query(sql));
    CommandTag tag = CreateCommandTag(raw->stmt);
    List *queries = pg_analyze_and_rewrite_fixedparams(raw, sql, nullptr, 0, nullptr);
    List *plans = pg_plan_queries(queries, sql, CURSOR_OPT_PARALLEL_OK, nullptr);
    Portal portal = CreatePortal("", true, true);
    portal->visible = false;
    PortalDefineQuery(portal, nullptr, sql, tag, plans, nullptr);
    PortalStart(portal, nullptr, 0, InvalidSnapshot);
    DestReceiver *dest = CreateDestReceiver(DestNone);
    QueryCompletion qc;
    InitializeQueryCompletion(&qc);
#if PG_VERSION_NUM >= 180000
    (void) PortalRun(portal, FETCH_ALL, true, dest, dest, &qc);
#else
    (void) PortalRun(portal, FETCH_ALL, true, true, dest, dest, &qc);
#endif
    dest->rDestroy(dest);
    PortalDrop(portal, false);
    CommitTransactionCommand();
    MemoryContextSwitchTo(outer);
    MemoryContextDelete(g_toplevel_context);
    g_toplevel_context = nullptr;
    return qc.nprocessed;
}


void TopLevelAborted() {
    if (g_toplevel_context != nullptr) {
        MemoryContextDelete(g_toplevel_context);
        g_toplevel_context = nullptr;
    }
}

}  // namespace pgguarantee
