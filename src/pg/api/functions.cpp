/*
 * functions.cpp: every SQL-callable function of the extension, one line each: the C symbol
 * the SQL scripts name, and the C++ function that does the work, behind the C++ wall.
 */
#include "pg/api/control.hpp"
#include "pg/api/run.hpp"
#include "pg/api/views.hpp"
#include "pg/shmem/downgrades.hpp"

using namespace pgguarantee;

PG_GUARANTEE_FUNCTION(run_with_parallel_guarantee, RunWithGuarantee(fcinfo))
PG_GUARANTEE_FUNCTION(submit_parallel_guarantee, SubmitRun(fcinfo))
PG_GUARANTEE_FUNCTION(run_in_chunks, RunChunks(fcinfo, false, false))
PG_GUARANTEE_FUNCTION(submit_chunks, RunChunks(fcinfo, false, true))
PG_GUARANTEE_FUNCTION(resume_chunks, RunChunks(fcinfo, true, false))
PG_GUARANTEE_FUNCTION(parallel_guarantee_wait_for, WaitFor(fcinfo))
PG_GUARANTEE_FUNCTION(parallel_guarantee_cancel_run, CancelRun(fcinfo))
PG_GUARANTEE_FUNCTION(parallel_guarantee_activity, Activity(fcinfo))
PG_GUARANTEE_FUNCTION(parallel_guarantee_lost, RunLost(fcinfo))
PG_GUARANTEE_FUNCTION(parallel_guarantee_running_chunks, RunningChunks(fcinfo))
PG_GUARANTEE_FUNCTION(parallel_guarantee_downgrades, DowngradesRows(fcinfo))
PG_GUARANTEE_FUNCTION(parallel_guarantee_downgrades_reset, DowngradesReset(fcinfo))
PG_GUARANTEE_FUNCTION(parallel_guarantee_downgrades_info, DowngradesInfo(fcinfo))
