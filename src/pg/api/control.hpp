/*
 * control.hpp: waiting for and cancelling runs in progress.
 */
#pragma once

#include "pg/parallel_guarantee.hpp"

namespace pgguarantee {

/* parallel_guarantee_wait_for(run_id, timeout): true once the run is no longer in progress. */
Datum WaitFor(FunctionCallInfo fcinfo);
/* parallel_guarantee_cancel_run(run_id): true if the run was in progress and is now asked to stop. */
Datum CancelRun(FunctionCallInfo fcinfo);

}  // namespace pgguarantee
