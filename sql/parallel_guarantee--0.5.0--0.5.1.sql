-- parallel_guarantee 0.5.0 -> 0.5.1: security fixes, all in the shared library (see
-- CHANGELOG.md); no SQL object changes.  Restart the server after installing the library.
\echo Use "ALTER EXTENSION parallel_guarantee UPDATE TO '0.5.1'" to load this file. \quit
