/*
 * messages.cpp: how the extension says things (errors.hpp's PallocCopy, parallel_guarantee.hpp's
 * SayProgress).
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

void SayProgress(const char *message) {
    ereport(NOTICE, (errmsg("parallel_guarantee: %s", message), errhidecontext(true)));
    if (g_log_attempts)
        ereport(LOG_SERVER_ONLY,
                (errmsg("parallel_guarantee: %s", message), errhidestmt(true), errhidecontext(true)));
}

}  // namespace pgguarantee
