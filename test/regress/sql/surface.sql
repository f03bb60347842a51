-- The 1.0 surface as a user meets it: the schema, the comments on everything in it, and the
-- setting parallel_guarantee.log_attempts.

-- Every object lives in the schema parallel_guarantee, which the extension is recorded in.
SELECT extnamespace::regnamespace AS schema, extversion FROM pg_extension
 WHERE extname = 'parallel_guarantee';
-- (PostgreSQL 17 also records the implicit types, arrays and the row types of tables and
-- views, as members: they are left out, so that every version lists the same members.)
CREATE VIEW sf_members AS
SELECT d.classid, d.objid
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'parallel_guarantee')
   AND NOT EXISTS (SELECT 1 FROM pg_type t
                    WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
                      AND (t.typcategory = 'A'
                           OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) <> 'c'));
SELECT count(*) AS members_elsewhere
  FROM sf_members m
  LEFT JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
  LEFT JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  LEFT JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
 WHERE coalesce(p.pronamespace, c.relnamespace, t.typnamespace)
       IS DISTINCT FROM 'parallel_guarantee'::regnamespace;

-- COMMENT ON everything a user sees: every function, view, view column, composite type and
-- type column of the extension (and its tables and sequence) has a comment.  The query
-- lists those without one: no rows.
CREATE VIEW sf_uncommented AS
SELECT 'function' AS kind, p.oid::regprocedure::text AS object
  FROM sf_members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
 WHERE obj_description(p.oid, 'pg_proc') IS NULL
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'r' THEN 'table' WHEN 'S' THEN 'sequence'
                      ELSE c.relkind::text END, c.oid::regclass::text
  FROM sf_members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
 WHERE obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT 'view column', format('%s.%I', c.oid::regclass, a.attname)
  FROM sf_members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind = 'v' AND col_description(c.oid, a.attnum) IS NULL
UNION ALL
SELECT 'type', t.oid::regtype::text
  FROM sf_members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
 WHERE obj_description(t.oid, 'pg_type') IS NULL
UNION ALL
SELECT 'type column', format('%s.%I', t.oid::regtype, a.attname)
  FROM sf_members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
  JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE t.typtype = 'c' AND col_description(t.typrelid, a.attnum) IS NULL;
SELECT kind, object FROM sf_uncommented ORDER BY 1, 2;
-- What the query looked at (so that "no rows" means something).
SELECT CASE WHEN m.classid = 'pg_proc'::regclass THEN 'function'
            WHEN m.classid = 'pg_type'::regclass THEN 'type ' || t.typtype::text
            ELSE 'relation ' || c.relkind::text END AS member, count(*)
  FROM sf_members m
  LEFT JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  LEFT JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
 GROUP BY 1 ORDER BY 1;
-- And it finds a missing comment (rolled back).
BEGIN;
COMMENT ON VIEW parallel_guarantee.parallel_guarantee_runs IS NULL;
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_chunks.message IS NULL;
COMMENT ON COLUMN parallel_guarantee.parallel_guarantee_result.run_id IS NULL;
COMMENT ON FUNCTION parallel_guarantee.parallel_guarantee_wait(bigint, interval) IS NULL;
SELECT kind, object FROM sf_uncommented ORDER BY 1, 2;
ROLLBACK;
-- The schema says what it is for and how to get in.
SELECT obj_description('parallel_guarantee'::regnamespace, 'pg_namespace') AS schema_comment;
DROP VIEW sf_uncommented, sf_members;

-- parallel_guarantee.log_attempts: none | problems | all, problems by default; on and off
-- (0.5's boolean) are accepted as all and none; anything else is refused with 22023; only
-- superusers may change it.
CREATE FUNCTION sf_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN sqlstate || ': ' || sqlerrm;
END $$;
SHOW parallel_guarantee.log_attempts;
SELECT setting, boot_val, reset_val, enumvals, context FROM pg_settings
 WHERE name = 'parallel_guarantee.log_attempts';
SET parallel_guarantee.log_attempts = none;
SHOW parallel_guarantee.log_attempts;
SET parallel_guarantee.log_attempts = 'all';
SHOW parallel_guarantee.log_attempts;
-- (ALL is a reserved word: unquoted, SET does not parse; postgresql.conf takes it as is.)
SET parallel_guarantee.log_attempts = all;
SET parallel_guarantee.log_attempts = problems;
SHOW parallel_guarantee.log_attempts;
SET parallel_guarantee.log_attempts = on;
SHOW parallel_guarantee.log_attempts;
SET parallel_guarantee.log_attempts = off;
SHOW parallel_guarantee.log_attempts;
SELECT sf_try($$SET parallel_guarantee.log_attempts = sometimes$$);
SELECT sf_try($$SET parallel_guarantee.log_attempts = ''$$);
SHOW parallel_guarantee.log_attempts;
\set VERBOSITY default
SET parallel_guarantee.log_attempts = verbose;
RESET parallel_guarantee.log_attempts;
SHOW parallel_guarantee.log_attempts;
CREATE ROLE sf_plain;
SET ROLE sf_plain;
SELECT sf_try($$SET parallel_guarantee.log_attempts = 'all'$$);
RESET ROLE;
DROP ROLE sf_plain;
DROP FUNCTION sf_try(text);
