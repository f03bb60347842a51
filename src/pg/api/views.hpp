/*
 * views.hpp: the SQL functions behind the live views, and their visibility rule.
 */
#pragma once

#include "pg/parallel_guarantee.hpp"

namespace pgguarantee {

/* May the current user see a run of this role?  Its own role (or a member), or pg_read_all_stats. */
bool CanSee(Oid run_user);

/* parallel_guarantee_activity(): the runs in progress the caller may see. */
Datum Activity(FunctionCallInfo fcinfo);
/*
 * parallel_guarantee_lost(run_id, chunked): true if a run the caller may see is recorded as
 * running but no worker has it any more (killed, server restarted).
 */
Datum RunLost(FunctionCallInfo fcinfo);
/* parallel_guarantee_running_chunks(): the chunk each worker of a visible chunked run is on. */
Datum RunningChunks(FunctionCallInfo fcinfo);

}  // namespace pgguarantee
