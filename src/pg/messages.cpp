/*
 * messages.cpp: how the extension says things that several files say (errors.hpp's
 * PallocCopy, parallel_guarantee.hpp's RaiseRunsNoQuery and SayProgress).
 */
#include "pg/parallel_guarantee.hpp"
#include "pg/settings.hpp"

#include <cstring>

namespace pgguarantee {

char *PallocCopy(const std::string &text) {
    char *copy = static_cast<char *>(
        MemoryContextAllocExtended(CurrentMemoryContext, text.size() + 1, MCXT_ALLOC_NO_OOM));
    if (copy == nullptr) return const_cast<char *>("(out of memory)");
    memcpy(copy, text.c_str(), text.size() + 1);
    return copy;
}

void RaiseRunsNoQuery() {
    ereport(ERROR,
            (errcode(ERRCODE_PG_NO_PARALLEL_PLAN),
             errmsg("the statement runs no query, so it cannot use parallel workers"),
             errdetail("Only queries (SELECT, CREATE TABLE AS, SELECT INTO, REFRESH "
                       "MATERIALIZED VIEW, COPY (query) TO, and queries run by DO blocks, "
                       "procedures and EXPLAIN ANALYZE) launch parallel workers through "
                       "a Gather node; index builds (CREATE INDEX, REINDEX INDEX or TABLE) and "
                       "VACUUM of named tables launch their own. Other commands are not "
                       "guaranteed, even those that rebuild indexes along the way (CLUSTER, "
                       "VACUUM FULL, ALTER TABLE)."),
             errhint("Run this statement directly, without run_with_parallel_guarantee.")));
}

void SayProgress(const char *message, bool problem) {
    ereport(NOTICE, (errmsg("parallel_guarantee: %s", message), errhidecontext(true)));
    if (g_log_attempts == static_cast<int>(LogAttempts::kAll) ||
        (problem && g_log_attempts == static_cast<int>(LogAttempts::kProblems)))
        ereport(LOG_SERVER_ONLY,
                (errmsg("parallel_guarantee: %s", message), errhidestmt(true), errhidecontext(true)));
}

}  // namespace pgguarantee
