/*
 * submitted.hpp: runs submitted by a transaction that then aborts are stopped.
 *
 * A submitted run goes on after its session, once the submit has returned its id.  But a
 * statement that submits several runs (SELECT submit_parallel_guarantee(...) FROM ...) and
 * then fails, or a transaction that rolls back, gives its client no id of the runs it
 * started: nobody would know of them.  So each run submitted in a (sub)transaction is
 * remembered until that transaction commits; if it aborts, the run is cancelled (recorded
 * cancelled, its statement rolled back, its cleanup run).
 */
#pragma once

#include "pg/parallel_guarantee.hpp"

namespace pgguarantee {

/* A run this session just submitted, in the current (sub)transaction. */
void RememberSubmittedRun(int64 run_id);

}  // namespace pgguarantee
