/*
 * spi_xact.hpp: the transaction frame every transaction of a worker runs in, and the one way
 * parallel_guarantee runs SQL as the owner of its tables.
 *
 * The frame (as src/test/modules/worker_spi does it): BeginSpiTransaction marks the start of
 * a statement, starts a transaction, takes a snapshot, shows the activity in
 * pg_stat_activity and connects SPI; EndSpiStatement disconnects SPI and drops the snapshot;
 * the caller then commits (CommitTransactionCommand) or, on an error, aborts.
 *
 * Running SQL as the owner:
 *
 * The extension's bookkeeping (the history of runs and attempts, chunk runs and chunks) runs
 * as the role that owns the extension's tables, inside processes where the caller's code ran
 * or may run: the run's worker and its chunk helpers (statement, cleanup, DO blocks, keys
 * query, action, and the triggers and functions they reach) and the caller's own backend (the
 * run views' "lost" check).  That code can create objects in its session's temporary schema,
 * and PostgreSQL searches pg_temp FIRST for relations and types unless search_path names it:
 * a domain pg_temp.int8 whose CHECK calls the caller's function would run that function as
 * the owner.  So every statement run here:
 *  - runs with search_path = 'pg_catalog, pg_temp' (pg_temp last: never found first);
 *  - names every table with its schema, every type, function and operator with pg_catalog
 *    (the PG_OP / PG_INT4 ... macros below), and takes its values as typed parameters (types
 *    given by OID), never a cast of text by a type's name;
 *  - runs as the owner under SECURITY_RESTRICTED_OPERATION (it can create no temporary
 *    object, and no SET ROLE can change who it runs as);
 *  - runs without lock_timeout or statement_timeout and with client_min_messages = warning;
 *  - in a transaction of its own (OwnerTransaction), also READ COMMITTED, read-write and not
 *    deferrable, whatever the session's defaults say, and a transient failure (serialization
 *    failure, deadlock, lock not available) is retried.
 *
 * The statements, every one of which goes through OwnerExecute (all in two files):
 *   history.cpp         record a run (and mark runs whose worker vanished as lost); record an
 *                       attempt; record a run's end (its last attempt, the purge of old runs);
 *                       record a terminated worker's run and attempt; read a run's role and
 *                       status in the caller's backend (the lost check of the views, the resume
 *                       check), read-only on the latest snapshot.
 *   history_chunks.cpp  record a chunk run; store a chunk; store the key set's type and size;
 *                       lock a pending chunk; mark a chunk done; count a failed try (lock, skip,
 *                       mark); set a chunk run's status; list pending chunks; tally a run; read
 *                       the first failed chunk; load a run to resume (and put its chunks back to
 *                       pending, count them, mark it running); read a resumed run's action.
 */
#pragma once

#include "pg/pg_includes.hpp"

namespace pgguarantee {

/* The frame (see above); activity: the text pg_stat_activity shows, null for none. */
void BeginSpiTransaction(const char *activity);
void EndSpiStatement();

/*
 * Runs one statement as a client's command runs: parsed, planned and run through a portal at
 * the top level, in a transaction started and committed here (the statement may commit and
 * start its own meanwhile: VACUUM, the CONCURRENTLY builds).  Returns the rows it processed.
 * After an error, once the transaction is rolled back, call TopLevelAborted.
 */
uint64 RunAtTopLevel(const char *sql);
void TopLevelAborted();

/* Qualified names for bookkeeping SQL text. */
#define PG_OP(op) " OPERATOR(pg_catalog." op ") "
#define PG_INT4 "pg_catalog.int4"
#define PG_INT8 "pg_catalog.int8"

/* Where the extension's tables are, and who owns them. */
struct ExtensionTables {
    Oid owner;              /* InvalidOid when the tables are missing (an older version) */
    const char *schema;     /* quoted, in TopMemoryContext */
};

/*
 * Finds the extension's tables in the schema (the one the SQL function was created in) by
 * the name of one of them, and their owner.  Needs a transaction.  owner is InvalidOid when
 * that table does not exist.
 */
ExtensionTables FindExtensionTables(Oid schema, const char *table);

/* A bookkeeping statement's parameters: types by OID, values, nulls (' ' or 'n'; null: none). */
struct OwnerParams {
    int nargs;
    const Oid *types;
    Datum *values;
    const char *nulls;
};

/*
 * Runs one statement as the owner, inside the current transaction (SPI connected), with
 * search_path, timeouts and messages pinned for the statement only.  With keep, the plan is
 * prepared once (under the pinned settings) and kept for the life of the process.  With
 * latest_read_only, it reads on the latest snapshot without a command counter step (safe in
 * the middle of the caller's own query).  Returns SPI's result code.
 */
int OwnerExecute(Oid owner, const char *sql, const OwnerParams &params, SPIPlanPtr *keep = nullptr,
                 bool latest_read_only = false);

/* What OwnerTransaction does when the transaction fails for good. */
enum class OnFailure { kRaise, kWarn };

/*
 * The transaction frame for bookkeeping: starts a transaction of its own with the pinned
 * settings (READ COMMITTED, read-write, no timeouts), connects SPI, calls body() (which runs
 * its statements with OwnerExecute and reads SPI_tuptable before returning: anything kept
 * past the commit must be copied out of SPI's memory), and commits.  A transient failure is
 * retried a few times; body() must therefore be safe to run again.  For kWarn, a failure is
 * a WARNING ("could not <what>: ...") and the result false.  With hold_cancel, a cancel that
 * arrives meanwhile stays pending and acts right after; the hold-off state is restored
 * exactly, even though an error resets it.
 */
bool OwnerTransactionImpl(const char *what, OnFailure on_failure, bool hold_cancel, void (*body)(void *),
                          void *arg);

template <typename Body>
bool OwnerTransaction(const char *what, OnFailure on_failure, bool hold_cancel, Body body) {
    return OwnerTransactionImpl(what, on_failure, hold_cancel,
                                [](void *arg) { (*static_cast<Body *>(arg))(); }, &body);
}

}  // namespace pgguarantee
