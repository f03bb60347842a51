-- parallel_guarantee 0.5.0 -> 0.5.1: security fixes, nearly all in the shared library (see
-- CHANGELOG.md).  Restart the server after installing the library.
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '0.5.1'" to load this file. \quit

-- The run-id sequence is the extension's own: the functions take ids from it without a
-- privilege check, and nobody else needs to (an ordinary role could burn ids).
REVOKE ALL ON SEQUENCE @extschema@.parallel_guarantee_run_id_seq FROM PUBLIC;
