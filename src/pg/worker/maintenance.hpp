/*
 * maintenance.hpp: the guarantee for parallel index builds (CREATE INDEX, REINDEX INDEX|TABLE)
 * inside the worker that runs them.
 *
 * An index build has no Gather: PostgreSQL plans its degree in plan_create_index_workers
 * (which builds a small planner state, and so calls the get_relation_info hook for the
 * table) and the access method launches the workers itself.  At that planning call, where
 * the new index is already in the catalog, we compute the same degree PostgreSQL is about
 * to use and refuse a degree below the target (53G03), judge the pool before the launch,
 * and start a 1 ms timer; the timer counts the leader's registered parallel workers in the
 * background-worker slots (core/maintenance.hpp says when a count is final) and cancels the
 * build the moment a launch is short and attempts are left.  The launch's NOTICE, the
 * activity view and the statistics are updated at the next point where it is safe to: the
 * next index's planning, the end of the command, or the abandoned attempt's rollback.
 */
#pragma once

#include "core/policy.hpp"
#include "pg/pg_includes.hpp"

namespace pgguarantee {

void InstallMaintenanceHooks();

/* An attempt of a maintenance run begins / ends (the end also after an error: no ereport). */
void MaintenanceBegin();
void MaintenanceEnd();

/* True when this get_relation_info call is plan_create_index_workers' (no join tree). */
bool IsIndexBuildPlanning(PlannerInfo *root);
/* In plan_create_index_workers, for the table about to get an index built. */
void MaintenancePlanning(Oid table_id);

/*
 * Before the statement runs, in its transaction: every build it will do is checked against
 * the target as PostgreSQL will plan it (53G03 before anything is built), taking the locks
 * the command takes; a REINDEX of a partitioned table is refused.
 */
void MaintenanceBeforeStatement(const char *sql);

/*
 * At the end of the command, before commit: the last launch judged, a build that never
 * planned refused.  True: nothing was to be built (CREATE INDEX IF NOT EXISTS of an index
 * that exists), and the attempt succeeds without a launch.
 */
bool MaintenanceCheckBeforeCommit();

/*
 * A concurrent build's attempt (CREATE INDEX or REINDEX CONCURRENTLY, submitted runs only):
 * the checks in a transaction of their own, then the statement at the top level (it commits
 * as it goes); its build's launch watched as any index build's.  An abandoned attempt leaves
 * the INVALID index PostgreSQL leaves for the cleanup to drop.
 */
uint64 RunConcurrentBuildAttempt(const char *sql);

/* After an attempt ended: says the launch the timer judged, if the attempt ended before it could. */
void MaintenanceReportAfterAttempt();

/* What vacuum.cpp shares with the index builds: how an abandonment is recorded, and the
 * permission check made before any lock is taken (owner; REINDEX and VACUUM from 17 also
 * MAINTAIN). */
AttemptOutcome OutcomeOfAbandon(LaunchVerdict verdict);
bool MayMaintain(Oid table_id, bool reindex);

}  // namespace pgguarantee
