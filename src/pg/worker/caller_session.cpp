/*
 * caller_session.cpp: see caller_session.hpp.
 */
#include "pg/worker/caller_session.hpp"

extern "C" {
#include "utils/guc_tables.h"
}

namespace pgguarantee {

namespace {

/*
 * A resume by another role (a member, a superuser) runs the run's action in the resumer's
 * session, with the resumer's settings.  Settings only a superuser (or a role granted SET on
 * them) may change, set for the resumer's role or session (session_replication_role =
 * replica, which disables triggers, say), must not apply to the run's role: each goes back to
 * its built-in default.  Settings of the server and the database apply to every role and stay.
 */
void DropPrivilegedSessionSettings() {
#if PG_VERSION_NUM >= 160000
    int count = 0;
    struct config_generic **gucs = get_guc_variables(&count);
#else
    struct config_generic **gucs = get_guc_variables();
    int count = GetNumConfigOptions();
#endif
    for (int i = 0; i < count; i++) {
        struct config_generic *g = gucs[i];
        if ((g->flags & GUC_CUSTOM_PLACEHOLDER) != 0) continue;
        if (g->context != PGC_SUSET && g->context != PGC_SU_BACKEND) continue;
        if (g->source != PGC_S_USER && g->source != PGC_S_DATABASE_USER && g->source != PGC_S_CLIENT &&
            g->source != PGC_S_SESSION)
            continue;
        char number[64];
        const char *value = nullptr;
        switch (g->vartype) {
            case PGC_BOOL:
                value = reinterpret_cast<struct config_bool *>(g)->boot_val ? "on" : "off";
                break;
            case PGC_INT:
                snprintf(number, sizeof number, "%d", reinterpret_cast<struct config_int *>(g)->boot_val);
                value = number;
                break;
            case PGC_REAL:
                snprintf(number, sizeof number, "%.17g", reinterpret_cast<struct config_real *>(g)->boot_val);
                value = number;
                break;
            case PGC_STRING:
                value = reinterpret_cast<struct config_string *>(g)->boot_val;
                break;
            case PGC_ENUM: {
                auto *e = reinterpret_cast<struct config_enum *>(g);
                value = config_enum_lookup_by_value(e, e->boot_val);
                break;
            }
        }
        if (value == nullptr) continue;
        (void) set_config_option(g->name, value, g->context, PGC_S_SESSION, GUC_ACTION_SET, true, ERROR, false);
    }
}

/*
 * Connects as the caller: the same login role, database, libraries and settings (as parallel
 * query hands them to its workers), then the caller's current role and security context.
 */
}  // namespace

void BecomeTheCaller(const RunShared *run, const RunSegment &segment) {
    BackgroundWorkerInitializeConnectionByOid(run->database_id, run->authenticated_user_id, 0);
    SetClientEncoding(GetDatabaseEncoding());
    StartTransactionCommand();
    RestoreLibraryState(segment.libraries);
    RestoreGUCState(segment.settings);
    if (run->mode == RunMode::kChunksResume && run->resume_role != run->current_user_id &&
        !superuser_arg(run->resume_role))
        DropPrivilegedSessionSettings();
    /* The caller's transaction was read-write (a read-only one is refused), whatever its default. */
    (void) set_config_option("default_transaction_read_only", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET,
                             true, 0, false);
    CommitTransactionCommand();
    SetCurrentRoleId(run->outer_user_id, run->role_is_superuser);
    SetUserIdAndSecContext(run->current_user_id, run->sec_context);
}

}  // namespace pgguarantee
