/*
 * vacuum.hpp: the guarantee for VACUUM of named tables, inside the worker that runs it.
 *
 * VACUUM cannot run in a transaction, so the worker runs it at the top level, as a client's
 * command runs (it commits as it goes).  Each table's degree is checked first (PostgreSQL
 * gives each index of at least min_parallel_index_scan_size to one process, the leader
 * included, capped by PARALLEL n: 53G03 below the target); then every parallel pass is
 * judged at its launch from PostgreSQL's own report of it (vacuum.cpp says how).
 */
#pragma once

#include "pg/pg_includes.hpp"

namespace pgguarantee {

void InstallVacuumHooks();

/*
 * A VACUUM attempt: the degree check (in a transaction of its own), then the VACUUM, every
 * pass judged as it is launched; returns with every pass said.  A short pass with attempts
 * left cancels the VACUUM (what it committed stays, as for a VACUUM cancelled by hand).
 */
uint64 RunVacuumAttempt(const char *sql);
/* The attempt ended, also by an error (no ereport): stops reading, records an abandonment. */
void VacuumAttemptEnded();
/* After an attempt's error and rollback: puts the settings back, frees what it held. */
void VacuumAttemptAborted();
/* After an attempt: says the passes not said yet. */
void VacuumReportAfterAttempt();

/*
 * The parallel index passes of an attempt's VACUUM, in the order they were launched, for the
 * history: at most kKeptPasses (the first ones and the last).  False when that attempt ran no
 * VACUUM (not one, or its degree check failed first).
 */
constexpr int kKeptPasses = 64;
struct VacuumPasses {
    int count;
    const int *planned;
    const int *launched;
};
bool VacuumPassesOf(int attempt, VacuumPasses *passes);

}  // namespace pgguarantee
