/*
 * submitted.cpp: see submitted.hpp.
 */
#include "pg/api/submitted.hpp"

#include "pg/shmem/run_slots.hpp"

namespace pgguarantee {

namespace {

struct Submitted {
    int64 run_id;
    SubTransactionId subxact;   /* the subtransaction that submitted it, or its committed parent */
};

Submitted *g_submitted = nullptr;   /* in TopMemoryContext */
int g_nsubmitted = 0;
int g_capacity = 0;
bool g_callbacks = false;

void CancelSubmittedFrom(SubTransactionId from) {
    int kept = 0;
    for (int i = 0; i < g_nsubmitted; i++) {
        if (g_submitted[i].subxact >= from)
            (void) RequestCancel(g_submitted[i].run_id, MyDatabaseId);
        else
            g_submitted[kept++] = g_submitted[i];
    }
    g_nsubmitted = kept;
}

void AtTransactionEnd(XactEvent event, void *) {
    CatchingCall([&] {
        if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
            CancelSubmittedFrom(InvalidSubTransactionId);
        else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT)
            g_nsubmitted = 0;
    });
}

void AtSubtransactionEnd(SubXactEvent event, SubTransactionId subxact, SubTransactionId parent, void *) {
    CatchingCall([&] {
        if (event == SUBXACT_EVENT_ABORT_SUB) {
            CancelSubmittedFrom(subxact);
        } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
            for (int i = 0; i < g_nsubmitted; i++)
                if (g_submitted[i].subxact >= subxact) g_submitted[i].subxact = parent;
        }
    });
}

}  // namespace

void RememberSubmittedRun(int64 run_id) {
    if (!g_callbacks) {
        RegisterXactCallback(AtTransactionEnd, nullptr);
        RegisterSubXactCallback(AtSubtransactionEnd, nullptr);
        g_callbacks = true;
    }
    if (g_nsubmitted == g_capacity) {
        int capacity = g_capacity == 0 ? 16 : g_capacity * 2;
        g_submitted = static_cast<Submitted *>(
            g_submitted == nullptr ? MemoryContextAlloc(TopMemoryContext, sizeof(Submitted) * capacity)
                                   : repalloc(g_submitted, sizeof(Submitted) * capacity));
        g_capacity = capacity;
    }
    g_submitted[g_nsubmitted++] = Submitted{run_id, GetCurrentSubTransactionId()};
}

}  // namespace pgguarantee
