/*
 * drop_guard.cpp: see drop_guard.hpp.  A ProcessUtility hook, chained like every other.
 */
#include "pg/drop_guard.hpp"

#include "pg/parallel_guarantee.hpp"
#include "pg/shmem/run_slots.hpp"

namespace pgguarantee {

namespace {

ProcessUtility_hook_type prev_ProcessUtility = nullptr;

bool DropsThisExtension(Node *stmt) {
    if (stmt == nullptr || !IsA(stmt, DropStmt)) return false;
    auto *drop = castNode(DropStmt, stmt);
    if (drop->removeType != OBJECT_EXTENSION) return false;
    ListCell *lc;
    foreach (lc, drop->objects)
        if (strcmp(strVal(lfirst(lc)), kLibraryName) == 0) return true;
    return false;
}

/* Refuses DROP EXTENSION parallel_guarantee while runs of this database are in progress. */
void RefuseDropWhileRunning(Node *stmt) {
    if (!RunSlotsReady() || !DropsThisExtension(stmt)) return;
    auto *ids = static_cast<int64 *>(palloc(sizeof(int64) * (MaxRuns() + 1)));
    int running = LiveRunIds(MyDatabaseId, ids);
    if (running == 0) return;
    ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
                    errmsg("cannot drop extension parallel_guarantee while %d run%s of this database %s in progress",
                           running, running == 1 ? "" : "s", running == 1 ? "is" : "are"),
                    errdetail("Run %lld%s would lose its history and its end.", static_cast<long long>(ids[0]),
                              running > 1 ? " and the others" : ""),
                    errhint("Wait for them (parallel_guarantee.parallel_guarantee_activity lists them) or cancel "
                            "them with SELECT * FROM parallel_guarantee.parallel_guarantee_cancel_runs(), then drop "
                            "the extension.")));
}

void GuardedProcessUtility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
                           ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
                           DestReceiver *dest, QueryCompletion *qc) {
    CatchingCall([&] { RefuseDropWhileRunning(pstmt->utilityStmt); });
    if (prev_ProcessUtility)
        prev_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
}

}  // namespace

void InstallDropGuard() {
    prev_ProcessUtility = ProcessUtility_hook;
    ProcessUtility_hook = GuardedProcessUtility;
}

}  // namespace pgguarantee
