-- Fixture of test/integration/security.sh, run as the superuser in a fresh database with the
-- extension installed.
--
-- mallory is an ordinary role with the one grant, USAGE on the schema parallel_guarantee
-- (which the database's search_path ends with, as the README shows).  Its "plant" functions
-- fill the temporary schema of whatever process runs them -- the background worker of a
-- run, when they are called from a statement, a cleanup, a keys query, an action or a
-- trigger -- with traps for the extension's bookkeeping SQL, which runs in that same
-- process as the owner of the extension's tables (a superuser):
--   - a domain named like every built-in type the bookkeeping may cast to by name
--     (int4, int8, text, bool, oid, timestamptz, regtype, ...), and like the extension's
--     own composite types, whose CHECK calls mallory.pwn;
--   - a temporary view named like every relation of the extension (its tables, views and
--     sequence) and like the pg_catalog relations, whose WHERE calls mallory.pwn, with
--     INSTEAD OF INSERT/UPDATE/DELETE triggers that call it too.
-- With search_path = 'pg_catalog' alone, pg_temp is searched FIRST for relations and types,
-- so an unqualified relation or a type named in the bookkeeping's SQL finds these.
--
-- mallory.plant_public puts look-alikes of the extension's relations (views calling
-- mallory.pwn, with INSTEAD OF triggers) and of its internal functions into public, which
-- comes ahead of parallel_guarantee on that search_path: owner-context SQL that resolved
-- names through the caller's search_path would find them (security.sh grants mallory CREATE
-- on public for section A, as in a database whose public schema is writable).
--
-- mallory.pwn records who runs it (mallory.audit, and a LOG line "security.sh: planted code
-- ran as ROLE" in the server log, which survives a read-only transaction) and, if it runs as
-- anyone but mallory, tries to make mallory a superuser and to copy public.secret, which
-- only the superuser may read, into mallory.loot.  It always returns true, so that a trap
-- that fires does not make the run fail: the attack stays silent, as a real one would.
SET client_min_messages = warning;
CREATE EXTENSION parallel_guarantee;
ALTER DATABASE secdb SET search_path = "$user", public, parallel_guarantee;

CREATE ROLE mallory LOGIN;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE SCHEMA mallory AUTHORIZATION mallory;
CREATE SCHEMA alice AUTHORIZATION alice;
CREATE SCHEMA bob AUTHORIZATION bob;
GRANT USAGE ON SCHEMA parallel_guarantee TO mallory, alice, bob;

-- Everyone may read this one; it is big enough for 4 parallel workers.
CREATE TABLE public.big (id int, pad text) WITH (parallel_workers = 4);
INSERT INTO public.big SELECT g, 'x' FROM generate_series(1, 100000) g;
GRANT SELECT ON public.big TO PUBLIC;
-- Nobody but the superuser may read this.
CREATE TABLE public.secret (id int, pw text);
INSERT INTO public.secret SELECT g, 'pw' || g FROM generate_series(1, 1000) g;
VACUUM ANALYZE public.big, public.secret;
-- One row per page: a session scanning it with max_parallel_workers_per_gather = N holds N
-- parallel workers while it runs (a shortage that lasts over several attempts).
CREATE TABLE public.hog (id int, pad text) WITH (fillfactor = 10, parallel_workers = 16);
INSERT INTO public.hog SELECT g, repeat('h', 1500) FROM generate_series(1, 64) g;

SET ROLE mallory;
CREATE TABLE mallory.audit (tag text, cu text, su text, pid int, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE mallory.loot (pw text);
CREATE TABLE mallory.keys (id int PRIMARY KEY);
INSERT INTO mallory.keys SELECT generate_series(1, 100);
CREATE TABLE mallory.items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO mallory.items (id) SELECT generate_series(1, 100);
-- The same, with a trigger that plants the traps.
CREATE TABLE mallory.trig_items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO mallory.trig_items (id) SELECT generate_series(1, 100);
-- Switches for the resumable runs: fail_at makes the action fail on that key (0: never);
-- plant makes it plant the traps.
CREATE TABLE mallory.flags (fail_at int NOT NULL, plant boolean NOT NULL);
INSERT INTO mallory.flags VALUES (0, false);

-- What the traps call.  Everything schema-qualified: it runs under whatever search_path the
-- process has at that moment (the bookkeeping's pg_catalog, or mallory's own).
CREATE FUNCTION mallory.pwn(tag text, val text) RETURNS boolean
LANGUAGE plpgsql AS $f$
BEGIN
  RAISE LOG 'security.sh: planted code ran as % (session %) in % (pid %)',
            current_user, session_user, tag, pg_catalog.pg_backend_pid();
  BEGIN
    INSERT INTO mallory.audit (tag, cu, su, pid)
    VALUES (tag, current_user, session_user, pg_catalog.pg_backend_pid());
  EXCEPTION WHEN OTHERS THEN
    RAISE LOG 'security.sh: planted code could not write its audit row: %', SQLERRM;
  END;
  IF current_user OPERATOR(pg_catalog.<>) 'mallory' THEN
    BEGIN
      EXECUTE 'ALTER ROLE mallory SUPERUSER';
    EXCEPTION WHEN OTHERS THEN
      RAISE LOG 'security.sh: planted code could not alter mallory: %', SQLERRM;
    END;
    BEGIN
      INSERT INTO mallory.loot SELECT s.pw FROM public.secret s;
    EXCEPTION WHEN OTHERS THEN
      RAISE LOG 'security.sh: planted code could not copy public.secret: %', SQLERRM;
    END;
  END IF;
  RETURN true;
END $f$;

CREATE FUNCTION mallory.pwn_trigger() RETURNS trigger
LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM mallory.pwn(pg_catalog.concat('trigger on ', TG_TABLE_NAME, ' ', TG_OP), '');
  RETURN NULL;
END $f$;

-- Plants the traps in this process's temporary schema (once per process) and records it
-- in mallory.audit as "planted PLACE N" (N: the temporary objects now there).
-- Its catalog queries run serially: a guaranteed statement must not count them as Gathers.
CREATE FUNCTION mallory.plant(place text) RETURNS boolean
LANGUAGE plpgsql SET max_parallel_workers_per_gather = 0 AS $f$
DECLARE
  ext oid;
  ext_schema text;
  rel record;
  cols text;
  r text;
  t text[];
  n int;
BEGIN
  IF pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0 AND EXISTS (
       SELECT 1 FROM pg_catalog.pg_type y
        WHERE y.typnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
          AND y.typname OPERATOR(pg_catalog.=) 'int8') THEN
    RETURN true;
  END IF;
  SELECT e.extnamespace INTO ext FROM pg_catalog.pg_extension e
   WHERE e.extname OPERATOR(pg_catalog.=) 'parallel_guarantee';
  SELECT s.nspname INTO ext_schema FROM pg_catalog.pg_namespace s WHERE s.oid OPERATOR(pg_catalog.=) ext;
  -- Relations first (their column types are named while no domain shadows them yet).
  FOR rel IN SELECT c.oid, c.relname FROM pg_catalog.pg_class c
              WHERE c.relnamespace OPERATOR(pg_catalog.=) ext AND c.relkind IN ('r', 'v', 'S', 'm', 'p')
  LOOP
    SELECT pg_catalog.string_agg(pg_catalog.format('NULL::%s AS %I',
                                   pg_catalog.format_type(a.atttypid, a.atttypmod), a.attname),
                                 ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) rel.oid AND a.attnum OPERATOR(pg_catalog.>) 0
       AND NOT a.attisdropped;
    EXECUTE pg_catalog.format('CREATE TEMP VIEW %I AS SELECT %s FROM (VALUES (1)) one WHERE mallory.pwn(%L, '''')',
                              rel.relname, cols, pg_catalog.concat('view ', rel.relname));
    EXECUTE pg_catalog.format('CREATE TRIGGER pwn INSTEAD OF INSERT OR UPDATE OR DELETE ON pg_temp.%I '
                              'FOR EACH ROW EXECUTE FUNCTION mallory.pwn_trigger()', rel.relname);
  END LOOP;
  FOREACH r IN ARRAY ARRAY['pg_class', 'pg_namespace', 'pg_type', 'pg_proc', 'pg_roles', 'pg_user',
                           'pg_database', 'pg_stat_activity', 'pg_extension', 'pg_attribute',
                           'pg_attrdef', 'pg_settings', 'pg_locks', 'pg_index', 'pg_constraint',
                           'pg_trigger', 'pg_tables', 'pg_views', 'pg_am', 'pg_operator', 'pg_cast',
                           'pg_collation', 'pg_language', 'pg_depend', 'pg_description',
                           'pg_inherits', 'pg_sequence', 'pg_sequences', 'pg_policy', 'pg_rewrite',
                           'pg_auth_members', 'pg_tablespace', 'pg_stat_user_tables',
                           'pg_prepared_xacts', 'pg_available_extensions', 'pg_enum', 'pg_range']
  LOOP
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) a.atttypid
     WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pg_catalog.concat('pg_catalog.', r))
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped AND y.typtype OPERATOR(pg_catalog.<>) 'p';
    EXECUTE pg_catalog.format('CREATE TEMP VIEW %I AS SELECT %s FROM pg_catalog.%I WHERE mallory.pwn(%L, '''')',
                              r, cols, r, pg_catalog.concat('view ', r));
  END LOOP;
  -- Then a domain named like every type, over that type.
  FOREACH t SLICE 1 IN ARRAY ARRAY[
      ['int2', 'pg_catalog.int2'], ['int4', 'pg_catalog.int4'], ['int8', 'pg_catalog.int8'],
      ['smallint', 'pg_catalog.int2'], ['integer', 'pg_catalog.int4'], ['int', 'pg_catalog.int4'],
      ['bigint', 'pg_catalog.int8'], ['text', 'pg_catalog.text'], ['varchar', 'pg_catalog.varchar'],
      ['bpchar', 'pg_catalog.bpchar'], ['name', 'pg_catalog.name'], ['char', 'pg_catalog."char"'],
      ['bool', 'pg_catalog.bool'], ['boolean', 'pg_catalog.bool'], ['oid', 'pg_catalog.oid'],
      ['regtype', 'pg_catalog.regtype'], ['regclass', 'pg_catalog.regclass'],
      ['regproc', 'pg_catalog.regproc'], ['regprocedure', 'pg_catalog.regprocedure'],
      ['regoper', 'pg_catalog.regoper'], ['regrole', 'pg_catalog.regrole'],
      ['regnamespace', 'pg_catalog.regnamespace'], ['timestamptz', 'pg_catalog.timestamptz'],
      ['timestamp', 'pg_catalog.timestamp'], ['date', 'pg_catalog.date'], ['time', 'pg_catalog.time'],
      ['interval', 'pg_catalog.interval'], ['numeric', 'pg_catalog.numeric'],
      ['decimal', 'pg_catalog.numeric'], ['float4', 'pg_catalog.float4'], ['real', 'pg_catalog.float4'],
      ['float8', 'pg_catalog.float8'], ['float', 'pg_catalog.float8'], ['bytea', 'pg_catalog.bytea'],
      ['json', 'pg_catalog.json'], ['jsonb', 'pg_catalog.jsonb'], ['uuid', 'pg_catalog.uuid'],
      ['xid', 'pg_catalog.xid'], ['xid8', 'pg_catalog.xid8'], ['tid', 'pg_catalog.tid'],
      ['cid', 'pg_catalog.cid'], ['pg_lsn', 'pg_catalog.pg_lsn'], ['inet', 'pg_catalog.inet'],
      ['oidvector', 'pg_catalog.oidvector'], ['int2vector', 'pg_catalog.int2vector'],
      ['money', 'pg_catalog.money'], ['bit', 'pg_catalog.bit'], ['varbit', 'pg_catalog.varbit']]
  LOOP
    EXECUTE pg_catalog.format('CREATE DOMAIN pg_temp.%I AS %s CHECK (mallory.pwn(%L, VALUE::pg_catalog.text))',
                              t[1], t[2], pg_catalog.concat('domain ', t[1]));
  END LOOP;
  -- The extension's own composite types (its tables' and views' row types are shadowed by
  -- the temporary views above).
  FOR rel IN SELECT y.typname FROM pg_catalog.pg_type y
              WHERE y.typnamespace OPERATOR(pg_catalog.=) ext AND y.typtype OPERATOR(pg_catalog.=) 'c'
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) y.typrelid
                                   AND c.relkind OPERATOR(pg_catalog.<>) 'c')
  LOOP
    EXECUTE pg_catalog.format('CREATE DOMAIN pg_temp.%I AS %I.%I CHECK (mallory.pwn(%L, VALUE::pg_catalog.text))',
                              rel.typname, ext_schema, rel.typname,
                              pg_catalog.concat('domain ', rel.typname));
  END LOOP;
  SELECT pg_catalog.count(*) INTO n FROM pg_catalog.pg_type y
   WHERE y.typnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema();
  INSERT INTO mallory.audit (tag, cu, su, pid)
  VALUES (pg_catalog.concat('planted ', place, ' ', n), current_user, session_user, pg_catalog.pg_backend_pid());
  RETURN true;
END $f$;

-- plant_public(true) plants the look-alikes in public, plant_public(false) removes them.
CREATE FUNCTION mallory.plant_public(plant boolean) RETURNS void
LANGUAGE plpgsql SET max_parallel_workers_per_gather = 0 AS $f$
DECLARE
  ext oid;
  rel record;
  cols text;
  f text[];
BEGIN
  SELECT e.extnamespace INTO ext FROM pg_catalog.pg_extension e
   WHERE e.extname OPERATOR(pg_catalog.=) 'parallel_guarantee';
  FOR rel IN SELECT c.oid, c.relname FROM pg_catalog.pg_class c
              WHERE c.relnamespace OPERATOR(pg_catalog.=) ext AND c.relkind IN ('r', 'v', 'S', 'm', 'p')
  LOOP
    IF NOT plant THEN
      EXECUTE pg_catalog.format('DROP VIEW IF EXISTS public.%I', rel.relname);
      CONTINUE;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('NULL::%s AS %I',
                                   pg_catalog.format_type(a.atttypid, a.atttypmod), a.attname),
                                 ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) rel.oid AND a.attnum OPERATOR(pg_catalog.>) 0
       AND NOT a.attisdropped;
    EXECUTE pg_catalog.format('CREATE VIEW public.%I AS SELECT %s FROM (VALUES (1)) one WHERE mallory.pwn(%L, '''')',
                              rel.relname, cols, pg_catalog.concat('public view ', rel.relname));
    EXECUTE pg_catalog.format('CREATE TRIGGER pwn INSTEAD OF INSERT OR UPDATE OR DELETE ON public.%I '
                              'FOR EACH ROW EXECUTE FUNCTION mallory.pwn_trigger()', rel.relname);
    EXECUTE pg_catalog.format('GRANT ALL ON public.%I TO PUBLIC', rel.relname);
  END LOOP;
  FOREACH f SLICE 1 IN ARRAY ARRAY[['parallel_guarantee_visible', 'oid'], ['parallel_guarantee_lost', 'bigint, boolean'],
                                   ['parallel_guarantee_cancel_run', 'bigint'], ['parallel_guarantee_wait_for', 'bigint, interval']]
  LOOP
    IF plant THEN
      EXECUTE pg_catalog.format('CREATE FUNCTION public.%I(%s) RETURNS boolean LANGUAGE sql AS $b$ SELECT mallory.pwn(%L, '''') $b$',
                                f[1], f[2], pg_catalog.concat('public function ', f[1]));
    ELSE
      EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS public.%I(%s)', f[1], f[2]);
    END IF;
  END LOOP;
END $f$;

-- Called by the actions: plant, then do the chunk's work.
CREATE FUNCTION mallory.act_plant(ids int[]) RETURNS int
LANGUAGE plpgsql AS $f$
DECLARE
  changed int;
BEGIN
  PERFORM mallory.plant('action');
  UPDATE mallory.items SET n = n OPERATOR(pg_catalog.+) 1 WHERE id OPERATOR(pg_catalog.=) ANY (ids);
  GET DIAGNOSTICS changed = ROW_COUNT;
  RETURN changed;
END $f$;
-- The same, steered by mallory.flags: fails on key fail_at, plants only if plant is set.
CREATE FUNCTION mallory.act_flags(ids int[]) RETURNS int
LANGUAGE plpgsql AS $f$
DECLARE
  f record;
  changed int;
BEGIN
  SELECT * INTO f FROM mallory.flags;
  IF f.plant THEN PERFORM mallory.plant('resumed action'); END IF;
  IF f.fail_at OPERATOR(pg_catalog.=) ANY (ids) THEN
    RAISE EXCEPTION 'key % fails on purpose', f.fail_at;
  END IF;
  UPDATE mallory.items SET n = n OPERATOR(pg_catalog.+) 1 WHERE id OPERATOR(pg_catalog.=) ANY (ids);
  GET DIAGNOSTICS changed = ROW_COUNT;
  RETURN changed;
END $f$;
CREATE FUNCTION mallory.plant_trigger() RETURNS trigger
LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM mallory.plant('trigger of the action''s table');
  RETURN NULL;
END $f$;
CREATE TRIGGER plant AFTER UPDATE ON mallory.trig_items
  FOR EACH STATEMENT EXECUTE FUNCTION mallory.plant_trigger();
RESET ROLE;

-- alice: an ordinary role whose chunked runs others resume.  Her action's table has a
-- trigger that logs every row it changes (a session with session_replication_role =
-- replica would silence it).  alice.flags steers her action: fail_at fails that key,
-- sleep_s sleeps that long per chunk.
SET ROLE alice;
CREATE TABLE alice.items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO alice.items (id) SELECT generate_series(1, 100);
CREATE TABLE alice.trig_log (id int, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE alice.flags (fail_at int NOT NULL, sleep_s float8 NOT NULL);
INSERT INTO alice.flags VALUES (0, 0);
CREATE FUNCTION alice.log_change() RETURNS trigger
LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO alice.trig_log (id) VALUES (NEW.id);
  RETURN NEW;
END $f$;
CREATE TRIGGER log_change AFTER UPDATE ON alice.items FOR EACH ROW EXECUTE FUNCTION alice.log_change();
CREATE FUNCTION alice.act(ids int[]) RETURNS int
LANGUAGE plpgsql AS $f$
DECLARE
  f record;
  changed int;
BEGIN
  SELECT * INTO f FROM alice.flags;
  IF f.fail_at OPERATOR(pg_catalog.=) ANY (ids) THEN
    RAISE EXCEPTION 'key % fails on purpose', f.fail_at;
  END IF;
  IF f.sleep_s OPERATOR(pg_catalog.>) 0 THEN PERFORM pg_catalog.pg_sleep(f.sleep_s); END IF;
  UPDATE alice.items SET n = n OPERATOR(pg_catalog.+) 1 WHERE id OPERATOR(pg_catalog.=) ANY (ids);
  GET DIAGNOSTICS changed = ROW_COUNT;
  RETURN changed;
END $f$;
RESET ROLE;
