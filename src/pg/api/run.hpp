/*
 * run.hpp: the SQL functions that start runs.
 */
#pragma once

#include "pg/parallel_guarantee.hpp"

namespace pgguarantee {

/* run_with_parallel_guarantee: runs the statement with its guarantee; the result row. */
Datum RunWithGuarantee(FunctionCallInfo fcinfo);
/* submit_parallel_guarantee: starts a run that goes on without the caller; its id. */
Datum SubmitRun(FunctionCallInfo fcinfo);
/* run_in_chunks / resume_chunks (the result row), submit_chunks (async: the run id). */
Datum RunChunks(FunctionCallInfo fcinfo, bool resume, bool async);

}  // namespace pgguarantee
