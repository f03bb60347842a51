/*
 * module.cpp: loading the module: settings, shared memory and hooks, nothing else.
 *
 * parallel_guarantee must be in shared_preload_libraries: the run slots live in the main
 * shared memory (shmem/run_slots.hpp) and the executor hook must be in every process the
 * postmaster forks (worker/monitor.hpp); so must the guard against dropping the extension under
 * a run (drop_guard.hpp).  Loaded any other way it defines its settings, and the SQL
 * functions say what is missing.
 */
#include "pg/drop_guard.hpp"
#include "pg/parallel_guarantee.hpp"
#include "pg/settings.hpp"
#include "pg/shmem/downgrades.hpp"
#include "pg/shmem/run_slots.hpp"
#include "pg/worker/monitor.hpp"

extern "C" {
PARALLEL_GUARANTEE_MODULE_MAGIC;
void _PG_init(void);
}

namespace pgguarantee {
namespace {

#if PG_VERSION_NUM >= 150000
shmem_request_hook_type prev_shmem_request_hook = nullptr;

void RequestSharedMemory(void) {
    CatchingCall([] {
        if (prev_shmem_request_hook) prev_shmem_request_hook();
        RequestRunSlots();
        RequestDowngrades();
    });
}
#endif

shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void StartSharedMemory(void) {
    CatchingCall([] {
        if (prev_shmem_startup_hook) prev_shmem_startup_hook();
        InitRunSlots();
        InitDowngrades();
    });
}

void InitModule() {
    DefineSettings();
    if (!process_shared_preload_libraries_in_progress) return;
#if PG_VERSION_NUM >= 150000
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = RequestSharedMemory;
#else
    RequestRunSlots();
    RequestDowngrades();
#endif
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = StartSharedMemory;
    InstallMonitorHooks();
    InstallDropGuard();
}

}  // namespace
}  // namespace pgguarantee

void _PG_init(void) {
    pgguarantee::CatchingCall([] { pgguarantee::InitModule(); });
}
