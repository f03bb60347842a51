/*
 * SeedLoop: the application-side workaround that run_with_parallel_guarantee replaces, as a
 * baseline for bench/contention/run.sh.  It is the seed's ParallelQueryExecutor loop, kept
 * as it was:
 *
 *   for attempt = 1 .. maxAttempts:
 *     run the statement asynchronously on its own connection;
 *     sleep 1 s;
 *     n = SELECT count(*) FROM pg_stat_activity WHERE leader_pid = <its pid>;
 *     n >= target                      -> let it finish: success (target_met)
 *     last attempt and best n >= min   -> let it finish: accepted (degraded)
 *     last attempt, best n < min       -> cancel, cleanup: failed
 *     otherwise                        -> pg_cancel_backend(pid) (pg_terminate_backend if the
 *                                         statement does not stop), run the cleanup,
 *                                         sleep 2 s, retry
 *
 * "best" is the most workers any attempt had at its check, exactly as the seed kept it: the
 * last attempt is accepted on that figure even when it got fewer itself.  The statement
 * connection sets max_parallel_workers_per_gather to the target (the seed's session did).
 * The one thing the seed cannot know, and this class records only for the report, is
 * whether the statement had already finished when the 1 s check looked (it then counts 0
 * workers and the seed treats it as short); the bench sizes its statement so that this does
 * not happen, and prints how often it did.
 *
 * Standalone:
 *   java -cp <classes>:/usr/share/java/postgresql.jar SeedLoop <jdbc-url> <statement> [cleanup]
 */
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

public class SeedLoop implements AutoCloseable {
    /* The seed's constants. */
    public static final long CHECK_AFTER_MS = 1000;
    public static final long RETRY_SLEEP_MS = 2000;
    /* How long a pg_cancel_backend gets before the seed falls back to pg_terminate_backend. */
    public static final long CANCEL_GRACE_MS = 5000;

    public static final class Attempt {
        public int number;
        public long startMs;        /* from the loop's start */
        public long checkMs;        /* when the workers were counted */
        public int workersSeen;
        public boolean finishedBeforeCheck;
        public String finishedWith;  /* for the report: "ok" or the statement's error */
        public String action;       /* "target met", "accepted (degraded)", "abandoned", "failed" */
        public boolean terminated;  /* pg_cancel_backend was not enough */
        public long endMs;

        @Override public String toString() {
            return String.format("attempt %d: start %d ms, check at %d ms saw %d workers%s, %s%s, ended %d ms",
                number, startMs, checkMs, workersSeen,
                finishedBeforeCheck ? " (statement already finished: " + finishedWith + ")" : "",
                action, terminated ? " (terminated)" : "", endMs);
        }
    }

    public static final class Result {
        public String outcome;      /* target_met | degraded | failed | error */
        public int attempts;
        public int abandoned;       /* attempts cancelled because they were short */
        public int best;            /* most workers seen at any check */
        public int finalWorkers;    /* workers seen at the accepted attempt's check */
        public long elapsedMs;      /* loop start -> accepted statement finished / loop gave up */
        public int finishedBeforeCheck;
        public String error;
        public List<Attempt> log = new ArrayList<>();
    }

    private final String url;
    private final Properties props;
    private final Connection monitor;
    private Connection work;
    private int workPid;
    private final ExecutorService async = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "seed-statement");
        t.setDaemon(true);
        return t;
    });
    private final int target;

    public SeedLoop(String url, Properties props, int target) throws SQLException {
        this.url = url;
        this.props = props;
        this.target = target;
        this.monitor = DriverManager.getConnection(url, props);
        this.monitor.setAutoCommit(true);
        openWork();
    }

    private void openWork() throws SQLException {
        work = DriverManager.getConnection(url, props);
        work.setAutoCommit(true);
        try (Statement s = work.createStatement()) {
            s.execute("SET max_parallel_workers_per_gather = " + target);
            try (ResultSet rs = s.executeQuery("SELECT pg_backend_pid()")) {
                rs.next();
                workPid = rs.getInt(1);
            }
        }
    }

    private static long ms(long fromNs) { return (System.nanoTime() - fromNs) / 1_000_000; }

    private int countWorkers() throws SQLException {
        try (Statement s = monitor.createStatement();
             ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_stat_activity WHERE leader_pid = " + workPid)) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private boolean signal(String fn) throws SQLException {
        try (Statement s = monitor.createStatement();
             ResultSet rs = s.executeQuery("SELECT " + fn + "(" + workPid + ")")) {
            rs.next();
            return rs.getBoolean(1);
        }
    }

    /* Cancels the running attempt; falls back to terminating its backend (and reconnects). */
    private boolean stop(Future<?> f) throws SQLException {
        signal("pg_cancel_backend");
        try {
            f.get(CANCEL_GRACE_MS, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            signal("pg_terminate_backend");
            try { f.get(CANCEL_GRACE_MS, TimeUnit.MILLISECONDS); } catch (Exception ignored) { }
            try { work.close(); } catch (SQLException ignored) { }
            openWork();
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            /* the expected "canceling statement due to user request" */
        }
        return false;
    }

    private void cleanup(String cleanup) throws SQLException {
        if (cleanup == null) return;
        try (Statement s = work.createStatement()) { s.execute(cleanup); }
    }

    /* The seed's loop.  minAccept is the seed's "best achieved >= 2". */
    public Result run(String statement, String cleanup, int minAccept, int maxAttempts) {
        Result r = new Result();
        long t0 = System.nanoTime();
        try {
            for (int attempt = 1; attempt <= maxAttempts; attempt++) {
                Attempt a = new Attempt();
                a.number = attempt;
                a.startMs = ms(t0);
                r.attempts = attempt;
                r.log.add(a);
                final Connection c = work;
                Future<?> f = async.submit(() -> {
                    try (Statement s = c.createStatement()) { s.execute(statement); }
                    return null;
                });
                Thread.sleep(CHECK_AFTER_MS);
                a.finishedBeforeCheck = f.isDone();
                if (a.finishedBeforeCheck) {
                    r.finishedBeforeCheck++;
                    try {
                        f.get();
                        a.finishedWith = "ok";
                    } catch (ExecutionException e) {
                        a.finishedWith = String.valueOf(e.getCause().getMessage()).split("\n")[0];
                    }
                }
                a.workersSeen = countWorkers();
                a.checkMs = ms(t0);
                r.best = Math.max(r.best, a.workersSeen);
                boolean last = attempt == maxAttempts;
                if (a.workersSeen >= target || (last && r.best >= minAccept)) {
                    try {
                        f.get();
                    } catch (ExecutionException e) {
                        r.outcome = "error";
                        r.error = e.getCause().getMessage();
                        a.action = "statement error";
                        a.endMs = ms(t0);
                        r.elapsedMs = a.endMs;
                        return r;
                    }
                    a.endMs = ms(t0);
                    a.action = a.workersSeen >= target ? "target met" : "accepted (degraded)";
                    r.outcome = a.workersSeen >= target ? "target_met" : "degraded";
                    r.finalWorkers = a.workersSeen;
                    r.elapsedMs = a.endMs;
                    return r;
                }
                a.terminated = stop(f);
                cleanup(cleanup);
                a.endMs = ms(t0);
                if (last) {
                    a.action = "failed";
                    r.outcome = "failed";
                    r.finalWorkers = a.workersSeen;
                    r.elapsedMs = a.endMs;
                    return r;
                }
                a.action = "abandoned";
                r.abandoned++;
                Thread.sleep(RETRY_SLEEP_MS);
            }
        } catch (SQLException e) {
            r.outcome = "error";
            r.error = e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            r.outcome = "error";
            r.error = "interrupted";
        }
        r.elapsedMs = ms(t0);
        return r;
    }

    @Override public void close() {
        async.shutdownNow();
        try { work.close(); } catch (SQLException ignored) { }
        try { monitor.close(); } catch (SQLException ignored) { }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: SeedLoop <jdbc-url> <statement> [cleanup]");
            System.exit(2);
        }
        Properties p = new Properties();
        p.setProperty("user", System.getenv().getOrDefault("PGUSER", "postgres"));
        try (SeedLoop loop = new SeedLoop(args[0], p, 4)) {
            Result r = loop.run(args[1], args.length > 2 ? args[2] : null, 2, 5);
            for (Attempt a : r.log) System.out.println(a);
            System.out.printf("%s after %d ms, %d attempts, %d abandoned, best %d workers%s%n",
                r.outcome, r.elapsedMs, r.attempts, r.abandoned, r.best, r.error == null ? "" : ": " + r.error);
            System.exit("target_met".equals(r.outcome) || "degraded".equals(r.outcome) ? 0 : 1);
        }
    }
}
