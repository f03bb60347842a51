/*
 * settings.hpp: the extension's settings (parallel_guarantee.*), defined at load time.
 */
#pragma once

namespace pgguarantee {

extern int g_max_runs;                 /* parallel_guarantee.max_runs */
extern int g_log_attempts;               /* parallel_guarantee.log_attempts */
extern bool g_reserve_slots;           /* parallel_guarantee.reserve_slots */
extern int g_max_async_runs;           /* parallel_guarantee.max_async_runs */
extern int g_history_days;             /* parallel_guarantee.history_days */
extern int g_max_runs_per_role;        /* parallel_guarantee.max_runs_per_role */
extern int g_max_async_runs_per_role;  /* parallel_guarantee.max_async_runs_per_role */
extern int g_max_priority;             /* parallel_guarantee.max_priority */
extern int g_max_chunk_helpers;        /* parallel_guarantee.max_chunk_helpers */
extern int g_max_reservation_ms;       /* parallel_guarantee.max_reservation_time */
extern bool g_track_downgrades;        /* parallel_guarantee.track_downgrades */
extern int g_max_downgrade_entries;    /* parallel_guarantee.max_downgrade_entries */
/*
 * parallel_guarantee.server_log_floor (hidden): while a guaranteed VACUUM reads PostgreSQL's
 * launch reports, log_min_messages is lowered in its worker (and so in its parallel workers,
 * which inherit the settings); this is the level the server logged at before, -1 otherwise.
 */
extern int g_server_log_floor;
extern char *g_notify_channel;         /* parallel_guarantee.notify_channel */
extern bool g_trace_phases;            /* parallel_guarantee.trace_phases */
extern bool g_preload_jit;             /* parallel_guarantee.preload_jit */

/* Defines the settings; the PGC_POSTMASTER one only while the server starts. */
void DefineSettings();

}  // namespace pgguarantee
