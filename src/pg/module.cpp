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
#include "pg/worker/maintenance.hpp"
#include "pg/worker/vacuum.hpp"
#include "pg/worker/monitor.hpp"

#include <sys/stat.h>

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

/*
 * parallel_guarantee.preload_jit: the JIT provider loaded into the postmaster, so that the
 * processes it forks inherit it.  A run's worker is a fresh process: with JIT on, its first
 * compiled expression loaded LLVM (about 20 ms here), and so did each parallel worker.  Only
 * when jit is on and the provider's library is there: a server without it starts as before.
 */
void PreloadJitProvider() {
    if (!g_preload_jit || !jit_enabled || jit_provider == nullptr || jit_provider[0] == '\0') return;
    if (strchr(jit_provider, '/') != nullptr) return;   /* only a library in $libdir */
    char path[MAXPGPATH];
    snprintf(path, sizeof(path), "%s/%s%s", pkglib_path, jit_provider, DLSUFFIX);
    struct stat st;
    if (::stat(path, &st) != 0) return;
    load_file(path, false);
}

void InitModule() {
    DefineSettings();
    if (!process_shared_preload_libraries_in_progress) return;
    PreloadJitProvider();
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
    InstallMaintenanceHooks();
    InstallVacuumHooks();
    InstallDropGuard();
}

}  // namespace
}  // namespace pgguarantee

void _PG_init(void) {
    pgguarantee::CatchingCall([] { pgguarantee::InitModule(); });
}
