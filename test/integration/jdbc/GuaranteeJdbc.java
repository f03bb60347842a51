/*
 * GuaranteeJdbc: JDBC clients that set a fetch size get serial plans; run_with_parallel_guarantee
 * gives the same statement its workers.
 *
 * With autocommit off and a fetch size, pgjdbc runs a query through a portal with a row
 * limit (Execute with max rows), and PostgreSQL never runs a row-limited portal in parallel:
 * the plan has a Gather, but it launches no workers.  The guaranteed call runs the statement
 * server-side, in a background worker, without a row limit, so the same fetch size does not
 * matter there.
 *
 * The extension's objects live in the schema parallel_guarantee (1.0).  A Java program either
 * puts it on the connection's search_path (currentSchema=public,parallel_guarantee in the JDBC
 * URL, as the guaranteed call here does) or qualifies the names
 * (parallel_guarantee.run_with_parallel_guarantee, as the other calls here do).
 *
 *   java -cp <classes>:/usr/share/java/postgresql.jar GuaranteeJdbc <port> [database]
 *
 * Prints "ok - <check>" or "not ok - <check>" per check, followed by "#" detail lines; exits
 * 0 when every check passed, 1 otherwise.
 */
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

public class GuaranteeJdbc {
    /* About 1.5-2 s serial: one 1 ms sleep every 250 rows of 200k; the qual references a column. */
    static final String STATEMENT =
        "SELECT count(*) FROM big WHERE pg_sleep(CASE WHEN id % 250 = 0 THEN 0.001 ELSE 0 END + id * 0) IS NOT NULL";
    static final long EXPECTED_ROWS = 200000;
    static final int FETCH_SIZE = 10;
    static final int POLL_MS = 20;
    static final int MAX_PARALLEL_WORKERS = 8;   /* the cluster's max_parallel_workers */

    /* The plain URL, and the same with the extension's schema on the search_path. */
    static String url;
    static String urlWithSchema;
    static final String SCHEMA_PARAMETER = "currentSchema=public,parallel_guarantee";
    static int failures = 0;
    static int checks = 0;

    static Connection connect(boolean autocommit) throws SQLException {
        return connect(url, autocommit);
    }

    static Connection connect(String connectUrl, boolean autocommit) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", "postgres");
        p.setProperty("loginTimeout", "10");
        p.setProperty("socketTimeout", "60");
        p.setProperty("ApplicationName", "GuaranteeJdbc");
        Connection c = DriverManager.getConnection(connectUrl, p);
        c.setAutoCommit(autocommit);
        return c;
    }

    static void report(boolean ok, String description, List<String> details) {
        checks++;
        if (!ok) failures++;
        System.out.println((ok ? "ok - " : "not ok - ") + description);
        for (String d : details)
            for (String line : d.split("\n")) System.out.println("#   " + line);
        System.out.flush();
    }

    static long queryLong(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static String queryString(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    /*
     * Other sessions on a shared cluster may hold parallel worker slots for a while; wait
     * (bounded) until at least `needed` are free, so a check measures this program's
     * statement and not someone else's load.  Returns a note for the details.
     */
    static String waitForFreeWorkers(Connection observer, int needed, long timeoutMs) throws SQLException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        long busy = 0;
        while (true) {
            busy = queryLong(observer,
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'");
            if (MAX_PARALLEL_WORKERS - busy >= needed) return "parallel workers busy elsewhere before the check: " + busy;
            if (System.currentTimeMillis() > deadline)
                return "WARNING: " + busy + " parallel workers were still busy elsewhere after waiting "
                    + timeoutMs + " ms; the result may reflect other sessions' load";
            sleep(200);
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /* What one watched execution came to. */
    static class Watched {
        long maxWorkers = 0;
        int samples = 0;
        long elapsedMs = 0;
        Object result;           /* what the execution returned */
        Throwable error;         /* or what it threw */
    }

    interface Execution {
        Object run() throws Exception;
    }

    /*
     * Runs `execution` (on its own connection) in a thread while `observer` polls `pollSql`
     * (one long parameter: the pid to watch) every POLL_MS until it finishes; keeps the
     * maximum count seen.
     */
    static Watched watch(ExecutorService pool, Connection observer, String pollSql, long pid,
                         Execution execution) throws Exception {
        Watched w = new Watched();
        long start = System.nanoTime();
        Future<Object> f = pool.submit(execution::run);
        long deadline = System.currentTimeMillis() + 30000;
        try (PreparedStatement poll = observer.prepareStatement(pollSql)) {
            poll.setLong(1, pid);
            while (!f.isDone() && System.currentTimeMillis() < deadline) {
                try (ResultSet rs = poll.executeQuery()) {
                    rs.next();
                    w.maxWorkers = Math.max(w.maxWorkers, rs.getLong(1));
                }
                w.samples++;
                sleep(POLL_MS);
            }
        }
        try {
            w.result = f.get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            w.error = e.getCause();
        } catch (java.util.concurrent.TimeoutException e) {
            w.error = e;
        }
        w.elapsedMs = (System.nanoTime() - start) / 1_000_000;
        return w;
    }

    static final String WORKERS_OF_PID =
        "SELECT count(*) FROM pg_stat_activity WHERE leader_pid = ? AND pid <> leader_pid";

    /* a and b: the statement run directly on connection a with the given fetch size. */
    static void checkDirect(ExecutorService pool, Connection a, long aPid, Connection observer,
                            int fetchSize, boolean expectParallel) throws Exception {
        List<String> details = new ArrayList<>();
        String description = expectParallel
            ? "direct statement with fetch size 0 (no row limit) launches parallel workers (the measurement works)"
            : "direct statement with fetch size " + fetchSize + " (row-limited portal) launches no parallel workers";
        details.add(waitForFreeWorkers(observer, 2, 15000));
        Watched w = watch(pool, observer, WORKERS_OF_PID, aPid, () -> {
            try (Statement s = a.createStatement()) {
                s.setFetchSize(fetchSize);
                s.setQueryTimeout(30);
                try (ResultSet rs = s.executeQuery(STATEMENT)) {
                    rs.next();
                    long n = rs.getLong(1);
                    a.commit();
                    return n;
                }
            } catch (SQLException e) {
                try { a.rollback(); } catch (SQLException ignored) { }
                throw e;
            }
        });
        details.add("statement: " + STATEMENT);
        details.add("autocommit " + a.getAutoCommit() + ", fetch size " + fetchSize);
        details.add("elapsed " + w.elapsedMs + " ms, " + w.samples + " polls of pg_stat_activity, "
            + "most parallel workers seen for leader " + aPid + ": " + w.maxWorkers);
        boolean ok;
        if (w.error != null) {
            details.add("the statement failed: " + describe(w.error));
            ok = false;
        } else {
            details.add("count(*) returned " + w.result);
            boolean rowsOk = Long.valueOf(EXPECTED_ROWS).equals(w.result);
            if (!rowsOk) details.add("expected count(*) = " + EXPECTED_ROWS);
            if (expectParallel) {
                ok = rowsOk && w.maxWorkers >= 1;
                if (w.maxWorkers < 1) details.add("expected at least 1 parallel worker");
            } else {
                boolean enoughSamples = w.samples >= 10;
                if (!enoughSamples)
                    details.add("too few polls while the statement ran to conclude anything (need 10)");
                ok = rowsOk && enoughSamples && w.maxWorkers == 0;
                if (w.maxWorkers != 0) details.add("expected 0 parallel workers");
            }
        }
        report(ok, description, details);
    }

    /*
     * c: the same statement through run_with_parallel_guarantee, same fetch size; connection a
     * has the extension's schema on its search_path (currentSchema in the URL), so the names
     * are unqualified.
     */
    static void checkGuaranteed(ExecutorService pool, Connection a, long aPid, Connection observer)
            throws Exception {
        List<String> details = new ArrayList<>();
        String description = "run_with_parallel_guarantee with fetch size " + FETCH_SIZE
            + " gets 4 workers (status target_met)";
        details.add(waitForFreeWorkers(observer, 4, 15000));
        String call = "SELECT status, workers_launched, workers_planned, attempts, rows "
            + "FROM run_with_parallel_guarantee(?, target_workers => 4, min_workers => 4, "
            + "max_attempts => 3, retry_delay => '100 ms')";
        /* Cross-check: parallel workers whose leader is the run's background worker. */
        String poll = "SELECT count(*) FROM pg_stat_activity WHERE leader_pid IN "
            + "(SELECT worker_pid FROM parallel_guarantee_activity WHERE caller_pid = ?) "
            + "AND pid <> leader_pid";
        Watched w = watch(pool, observer, poll, aPid, () -> {
            try (PreparedStatement ps = a.prepareStatement(call)) {
                ps.setFetchSize(FETCH_SIZE);
                ps.setQueryTimeout(30);
                ps.setString(1, STATEMENT);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) throw new SQLException("no row returned");
                    Object[] row = {rs.getString(1), rs.getObject(2), rs.getObject(3),
                                    rs.getObject(4), rs.getObject(5)};
                    a.commit();
                    return row;
                }
            } catch (SQLException e) {
                try { a.rollback(); } catch (SQLException ignored) { }
                throw e;
            }
        });
        details.add("autocommit " + a.getAutoCommit() + ", fetch size " + FETCH_SIZE);
        details.add("elapsed " + w.elapsedMs + " ms; most parallel workers seen under the run's "
            + "background worker: " + w.maxWorkers + " (" + w.samples + " polls, informational)");
        boolean ok;
        if (w.error != null) {
            details.add("the call failed: " + describe(w.error));
            ok = false;
        } else {
            Object[] row = (Object[]) w.result;
            details.add("status " + row[0] + ", workers_launched " + row[1] + ", workers_planned "
                + row[2] + ", attempts " + row[3] + ", rows " + row[4]);
            ok = "target_met".equals(row[0]) && row[1] != null && ((Number) row[1]).intValue() == 4;
            if (!ok) details.add("expected status target_met and workers_launched 4");
        }
        report(ok, description, details);
    }

    /*
     * d: a guaranteed call that cannot reach min_workers raises SQLSTATE 53G01; the plain URL,
     * the name qualified.
     */
    static void checkFailure() {
        List<String> details = new ArrayList<>();
        String description = "a guaranteed call below min_workers raises SQLSTATE 53G01 (\"below min_workers\"), "
            + "parallel_guarantee.run_with_parallel_guarantee qualified";
        boolean ok;
        try (Connection d = connect(true)) {
            exec(d, "SET max_parallel_workers = 1");
            String call = "SELECT status, workers_launched FROM parallel_guarantee.run_with_parallel_guarantee(?, "
                + "target_workers => 4, min_workers => 2, max_attempts => 2, retry_delay => '0')";
            try (PreparedStatement ps = d.prepareStatement(call)) {
                ps.setQueryTimeout(30);
                ps.setString(1, STATEMENT);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    details.add("no error: status " + rs.getString(1) + ", workers_launched " + rs.getObject(2));
                    ok = false;
                }
            } catch (SQLException e) {
                String state = e.getSQLState();
                String message = String.valueOf(e.getMessage());
                details.add("SQLState " + state);
                for (String line : message.split("\n")) details.add("message: " + line);
                ok = "53G01".equals(state) && message.contains("below min_workers");
                if (!ok) details.add("expected SQLState 53G01 and a message mentioning \"below min_workers\"");
            }
        } catch (SQLException e) {
            details.add("could not set up the connection: " + describe(e));
            ok = false;
        }
        report(ok, description, details);
    }

    /*
     * e: SELECT * of the result row, as a Java program reading columns by position would: 1.0
     * puts run_id first; that id is the run's row in parallel_guarantee_runs.
     */
    static final String[] RESULT_COLUMNS =
        {"run_id", "status", "rows", "workers_planned", "workers_launched", "attempts", "elapsed"};

    static void checkResultRow() {
        List<String> details = new ArrayList<>();
        String description = "SELECT * FROM parallel_guarantee.run_with_parallel_guarantee(...): columns run_id, status, "
            + "rows, workers_planned, workers_launched, attempts, elapsed; getLong(1) is the run's id in parallel_guarantee_runs";
        boolean ok;
        try (Connection e = connect(true)) {
            String call = "SELECT * FROM parallel_guarantee.run_with_parallel_guarantee(?, target_workers => 2, "
                + "min_workers => 2, max_attempts => 3, retry_delay => '100 ms', label => 'jdbc result row')";
            List<String> columns = new ArrayList<>();
            long runId;
            String status;
            try (PreparedStatement ps = e.prepareStatement(call)) {
                ps.setQueryTimeout(30);
                ps.setString(1, STATEMENT);
                try (ResultSet rs = ps.executeQuery()) {
                    java.sql.ResultSetMetaData md = rs.getMetaData();
                    for (int i = 1; i <= md.getColumnCount(); i++) columns.add(md.getColumnLabel(i));
                    rs.next();
                    runId = rs.getLong(1);
                    status = rs.getString(2);
                }
            }
            details.add("columns " + String.join(", ", columns) + "; getLong(1) " + runId + ", getString(2) " + status);
            String recorded = null;
            try (PreparedStatement ps = e.prepareStatement(
                    "SELECT kind || '|' || label || '|' || status FROM parallel_guarantee.parallel_guarantee_runs WHERE run_id = ?")) {
                ps.setLong(1, runId);
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) recorded = rs.getString(1);
                }
            }
            details.add("parallel_guarantee_runs row of run " + runId + ": " + recorded);
            ok = columns.equals(List.of(RESULT_COLUMNS)) && "target_met".equals(status)
                && "guaranteed|jdbc result row|target_met".equals(recorded);
            if (!ok) details.add("expected the columns " + String.join(", ", RESULT_COLUMNS)
                + ", status target_met, and the row guaranteed|jdbc result row|target_met");
        } catch (SQLException e) {
            details.add("failed: " + describe(e));
            ok = false;
        }
        report(ok, description, details);
    }

    /* f: the plain URL and an unqualified name: what a program gets before either way is set up. */
    static void checkUnqualifiedWithoutSchema() {
        List<String> details = new ArrayList<>();
        String description = "without currentSchema (search_path \"$user\", public) the unqualified "
            + "run_with_parallel_guarantee is not found: SQLState 42883";
        boolean ok;
        try (Connection f = connect(true); Statement s = f.createStatement()) {
            try (ResultSet rs = s.executeQuery("SELECT status FROM run_with_parallel_guarantee('SELECT 1')")) {
                details.add("no error");
                ok = false;
            } catch (SQLException e) {
                details.add(describe(e));
                ok = "42883".equals(e.getSQLState());
            }
        } catch (SQLException e) {
            details.add("could not connect: " + describe(e));
            ok = false;
        }
        report(ok, description, details);
    }

    static String describe(Throwable t) {
        if (t instanceof SQLException)
            return "[" + ((SQLException) t).getSQLState() + "] " + t.getMessage();
        return t.toString();
    }

    public static void main(String[] args) throws Exception {
        String port = args.length > 0 ? args[0] : "54329";
        String database = args.length > 1 ? args[1] : "pg_guarantee_jdbc";
        url = "jdbc:postgresql://127.0.0.1:" + port + "/" + database;
        urlWithSchema = url + "?" + SCHEMA_PARAMETER;
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "statement");
            t.setDaemon(true);
            return t;
        });
        try (Connection a = connect(urlWithSchema, false); Connection observer = connect(urlWithSchema, true)) {
            long aPid = queryLong(a, "SELECT pg_backend_pid()");
            /* The degree the guaranteed run plans (it sets this in its worker); the cluster's is 2. */
            exec(a, "SET max_parallel_workers_per_gather = 4");
            a.commit();
            System.out.println("# driver " + a.getMetaData().getDriverVersion() + ", server "
                + a.getMetaData().getDatabaseProductVersion() + ", connection A pid " + aPid
                + ", URL parameter " + SCHEMA_PARAMETER + ": search_path " + queryString(a, "SHOW search_path"));
            a.commit();

            try { checkDirect(pool, a, aPid, observer, FETCH_SIZE, false); }
            catch (Exception e) { report(false, "direct statement with fetch size " + FETCH_SIZE
                + " launches no parallel workers", List.of("unexpected: " + describe(e))); }
            try { checkDirect(pool, a, aPid, observer, 0, true); }
            catch (Exception e) { report(false, "direct statement with fetch size 0 launches parallel workers",
                List.of("unexpected: " + describe(e))); }
            try { checkGuaranteed(pool, a, aPid, observer); }
            catch (Exception e) { report(false, "run_with_parallel_guarantee with fetch size "
                + FETCH_SIZE + " gets 4 workers", List.of("unexpected: " + describe(e))); }
        } catch (SQLException e) {
            report(false, "connect to " + url, List.of(describe(e)));
        }
        checkFailure();
        checkResultRow();
        checkUnqualifiedWithoutSchema();
        pool.shutdownNow();
        System.out.println("# " + (checks - failures) + " of " + checks + " checks passed");
        System.exit(failures == 0 ? 0 : 1);
    }
}
