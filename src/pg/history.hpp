/*
 * history.hpp: recording runs and attempts in the extension's history tables.
 *
 * The worker writes each row in a transaction of its own, so the history survives the
 * caller's rollback and the run's failure.  It writes as the owner of the tables (the
 * statement itself never runs with that role) with search_path pinned to pg_catalog.
 * History is best effort: a failed write is a WARNING in the server log, never the
 * run's failure.  Databases still on the first version, which had no history tables,
 * are simply not recorded.
 */
#pragma once

#include "pg/shmem/run_segment.hpp"

namespace pgguarantee {

/* Finds the tables, marks runs whose worker vanished as lost, and records this run. */
void HistoryBegin(const RunShared *run, const char *statement, const char *cleanup,
                  const char *label);
/*
 * Records an attempt; the final one (final = true) is written together with the run's
 * end by HistoryFinish, in one transaction.
 */
void HistoryAttempt(const RunShared *run, int attempt, TimestampTz started, bool final);
/* Records the final status; sqlstate and message are null on success.  Purges old runs. */
void HistoryFinish(const RunShared *run, const char *status, const char *sqlstate,
                   const char *message);

}  // namespace pgguarantee
