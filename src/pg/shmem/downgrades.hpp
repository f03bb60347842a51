/*
 * downgrades.hpp: the server-wide downgrade statistics — every Gather and Gather Merge launch
 * in the server, guaranteed run or not, counted by database, role and query id, and by how
 * far short of its plan it fell (core/downgrade.hpp).
 *
 * A fixed-size hash table in the main shared memory (parallel_guarantee.max_downgrade_entries
 * entries): past it the least-used 5 % are evicted and counted.  Saved to
 * pg_stat/parallel_guarantee_downgrades.stat at a clean shutdown and loaded at start, as
 * pg_stat_statements does; a crash loses them.  A launch is counted once, when its Gather
 * first runs (worker/monitor.cpp), never per tuple.  This file takes the table's lock.
 */
#pragma once

#include "pg/pg_includes.hpp"

namespace pgguarantee {

void RequestDowngrades();
void InitDowngrades();

/* Counts one launch of `launched` of `planned` workers in this database, as this user. */
void RecordLaunch(uint64 query_id, int planned, int launched);

/* parallel_guarantee_downgrades(): the entries the caller may see. */
Datum DowngradesRows(FunctionCallInfo fcinfo);
/* parallel_guarantee_downgrades_reset(): empties the table; the number of entries removed. */
Datum DowngradesReset(FunctionCallInfo fcinfo);
/* parallel_guarantee_downgrades_info(): entries, bound, evicted, reset time. */
Datum DowngradesInfo(FunctionCallInfo fcinfo);

}  // namespace pgguarantee
