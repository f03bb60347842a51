/*
 * ContentionBench: replays seeded contention traces against the seed's client-side loop
 * (SeedLoop) and against run_with_parallel_guarantee, then runs 4 guaranteed calls at once.
 * Driven by bench/contention/run.sh, which creates the database and the tables first.
 *
 *   java -cp <classes>:/usr/share/java/postgresql.jar ContentionBench <jdbc-url> <detail-log>
 *
 * Knobs (environment): CONTENTION_SEED (default 20251122), CONTENTION_TRACES (traces whose
 * shortage ends 0.5-4 s after the start, default 8, at least 8), CONTENTION_LONG (traces with
 * a longer shortage, alternately 5-8 s and 8.5-11.5 s, default 2).
 *
 * A trace is a list of hogs: sessions that hold k parallel workers (a parallel scan of the
 * one-row-per-page table "hog" whose every row sleeps), started at an offset from the trace
 * start and released by their own statement_timeout after a hold time.  The hogs at offset 0
 * are started first and confirmed holding (pg_stat_activity, leader_pid); then t = 0 and the
 * contender starts.  The later hogs are started by a timer.  When the contender has returned,
 * the hogs still holding (or not yet started) are cut short: they cannot change its result.
 *
 * Earliest possible finish: replaying the hogs' observed start and release times (a hog that
 * was cut short counts with its scheduled release) with no statement in the way, the first
 * moment t >= 0 at which target_workers of max_parallel_workers are free, plus the
 * statement's run time at full degree without contention (measured once, before the traces).
 * Lateness = time to finish - that.  Every figure is printed; nothing here fails on a timing.
 */
import java.io.FileWriter;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

public class ContentionBench {
    static final String STATEMENT = "CREATE TABLE tmp_x AS SELECT k % 1000 AS g, sum(v) AS s FROM bench_big GROUP BY 1";
    static final String CLEANUP = "DROP TABLE IF EXISTS tmp_x";
    static final int TARGET = 4, MIN = 2, ATTEMPTS = 5;
    static final String CALL =
        "SELECT status, workers_launched, attempts, run_id FROM run_with_parallel_guarantee(?, cleanup => ?, "
        + "target_workers => 4, min_workers => 2, max_attempts => 5, max_wait => '8 seconds')";
    static final String HOG_QUERY = "SELECT count(*) FROM hog WHERE pg_sleep(3600 + id*0) IS NOT NULL";

    static String url;
    static Properties props;
    static PrintWriter detail;
    static Connection mon;          /* the driver's own observer connection */
    static int maxParallelWorkers;
    static long fullMs;             /* statement at full degree, no contention: fastest run */
    static String fullAll = "";
    static final long benchStart = System.nanoTime();

    /* ------------------------------------------------------------------ helpers */
    static Connection connect(String app) throws SQLException {
        Properties p = new Properties();
        p.putAll(props);
        p.setProperty("ApplicationName", app);
        Connection c = DriverManager.getConnection(url, p);
        c.setAutoCommit(true);
        return c;
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) { s.execute(sql); }
    }

    static long queryLong(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static long msSince(long ns) { return (System.nanoTime() - ns) / 1_000_000; }

    static void sleep(long ms) {
        try { Thread.sleep(ms); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
    }

    static void log(String fmt, Object... args) {
        detail.println(String.format(Locale.ROOT, fmt, args));
        detail.flush();
    }

    static double median(List<Double> xs) {
        if (xs.isEmpty()) return Double.NaN;
        double[] a = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        int n = a.length;
        return n % 2 == 1 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
    }

    static String secs(double ms) { return Double.isNaN(ms) ? "n/a" : String.format(Locale.ROOT, "%.3f", ms / 1000); }
    static String msSigned(double ms) { return Double.isNaN(ms) ? "n/a" : String.format(Locale.ROOT, "%+.0f ms", ms); }

    /* Parallel workers busy in the whole cluster (anyone's). */
    static long parallelWorkersBusy() throws SQLException {
        return queryLong(mon, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'");
    }

    /*
     * Before a trace: wait (bounded, 15 s) until no parallel worker is busy and no guaranteed
     * run waits in the queue anywhere on the cluster, so the trace starts from a known pool.
     * Returns what was still busy when the wait ended (0 when quiet).
     */
    static long[] waitQuiet() throws SQLException {
        long t = System.nanoTime();
        long busy = 0, queued = 0;
        while (msSince(t) < 15000) {
            busy = parallelWorkersBusy();
            queued = queryLong(mon, "SELECT count(*) FROM parallel_guarantee_queue WHERE queue_position IS NOT NULL");
            if (busy == 0 && queued == 0) break;
            sleep(20);
        }
        return new long[] {busy, queued};
    }

    /* ------------------------------------------------------------------ traces */
    record HogSpec(int k, long offsetMs, long holdMs) {
        String show() {
            return String.format(Locale.ROOT, "%d workers @%.2f s for %.2f s", k, offsetMs / 1000.0, holdMs / 1000.0);
        }
    }

    record TraceSpec(int id, String pattern, List<HogSpec> hogs) { }

    static long uniform(Random r, long lo, long hi) { return lo + (long) Math.floor(r.nextDouble() * (hi - lo)); }

    static List<TraceSpec> makeTraces(long seed, int regular, int longOnes) {
        Random r = new Random(seed);
        List<TraceSpec> out = new ArrayList<>();
        int id = 1;
        for (int i = 0; i < regular; i++, id++) {
            switch (i % 3) {
                case 0 -> out.add(new TraceSpec(id, "single",
                    List.of(new HogSpec(6, 0, uniform(r, 500, 4000)))));
                case 1 -> {
                    /* 5 + 2 held: only the 5-worker hog's release frees enough (3 free otherwise). */
                    long h5 = uniform(r, 500, 4000), h2 = uniform(r, 300, 4000);
                    out.add(new TraceSpec(id, "staggered", List.of(new HogSpec(5, 0, h5), new HogSpec(2, 0, h2))));
                }
                default -> {
                    /* A second wave: 5 workers taken again some time after the first release. */
                    long h1 = uniform(r, 500, 3000), gap = uniform(r, 400, 1500), h2 = uniform(r, 500, 2000);
                    out.add(new TraceSpec(id, "wave", List.of(new HogSpec(6, 0, h1), new HogSpec(5, h1 + gap, h2))));
                }
            }
        }
        /* Long shortages, alternately shorter and longer than the max_wait the calls pass (8 s:
         * the default before 1.0 at max_attempts 5, retry_delay 2 s; 1.0's default is 30 minutes)
         * and all ending before the client loop's 5th attempt (~12 s). */
        for (int i = 0; i < longOnes; i++, id++)
            out.add(new TraceSpec(id, "long", List.of(new HogSpec(6, 0,
                i % 2 == 0 ? uniform(r, 5000, 8000) : uniform(r, 8500, 11500)))));
        return out;
    }

    /* A hog: one session holding k parallel workers until its statement_timeout. */
    static final class Hog {
        final HogSpec spec;
        final Connection c;
        final int pid;
        volatile long acquireNs, releaseNs;
        volatile boolean started, cut, cancelledBeforeStart;
        volatile String endedWith;
        Thread thread;

        Hog(HogSpec spec, String app) throws SQLException {
            this.spec = spec;
            c = connect(app);
            exec(c, "SET parallel_setup_cost = 0");
            exec(c, "SET parallel_tuple_cost = 0");
            exec(c, "SET min_parallel_table_scan_size = 0");
            exec(c, "SET max_parallel_workers_per_gather = " + spec.k());
            exec(c, "SET statement_timeout = '" + spec.holdMs() + "ms'");
            pid = (int) queryLong(c, "SELECT pg_backend_pid()");
        }

        synchronized void start() {
            if (cancelledBeforeStart) return;
            started = true;
            thread = new Thread(() -> {
                acquireNs = System.nanoTime();
                try (Statement s = c.createStatement()) {
                    s.executeQuery(HOG_QUERY).close();
                    endedWith = "returned";
                } catch (SQLException e) {
                    endedWith = e.getSQLState();
                }
                releaseNs = System.nanoTime();
            }, "hog-" + pid);
            thread.start();
        }

        /* After the contender returned: a hog not started never starts, one holding is cancelled. */
        synchronized void cutShort() throws SQLException {
            if (!started) { cancelledBeforeStart = true; return; }
            if (releaseNs == 0) {
                cut = true;
                queryLong(mon, "SELECT pg_cancel_backend(" + pid + ")::int");
            }
        }

        void finish() {
            if (thread != null) {
                try { thread.join(spec.holdMs() + 10000); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
            }
            try { c.close(); } catch (SQLException ignored) { }
        }

        int workersNow() throws SQLException {
            return (int) queryLong(mon, "SELECT count(*) FROM pg_stat_activity WHERE leader_pid = " + pid);
        }
    }

    record Ev(double t, boolean acquire, Hog h) { }

    /* The earliest moment (ms from t0) at which TARGET workers were free, hogs only. */
    static double earliestFree(List<Hog> hogs, long t0) {
        List<Ev> evs = new ArrayList<>();
        for (Hog h : hogs) {
            if (!h.started) continue;
            double a = (h.acquireNs - t0) / 1e6;
            double rel = h.cut || h.releaseNs == 0 ? a + h.spec.holdMs() : (h.releaseNs - t0) / 1e6;
            evs.add(new Ev(a, true, h));
            evs.add(new Ev(rel, false, h));
        }
        /* releases before acquisitions at the same instant */
        evs.sort(Comparator.comparingDouble(Ev::t).thenComparing(Ev::acquire));
        Map<Hog, Integer> got = new HashMap<>();
        int held = 0;
        int i = 0;
        for (; i < evs.size() && evs.get(i).t() <= 0; i++) held = apply(evs.get(i), got, held);
        if (maxParallelWorkers - held >= TARGET) return 0;
        for (; i < evs.size(); i++) {
            held = apply(evs.get(i), got, held);
            if (maxParallelWorkers - held >= TARGET) return evs.get(i).t();
        }
        return Double.NaN;
    }

    /* A hog that starts gets what is free, up to its k; its release frees what it got. */
    static int apply(Ev e, Map<Hog, Integer> got, int held) {
        if (e.acquire()) {
            int g = Math.max(0, Math.min(e.h().spec.k(), maxParallelWorkers - held));
            got.put(e.h(), g);
            return held + g;
        }
        return held - got.getOrDefault(e.h(), 0);
    }

    /* ------------------------------------------------------------------ contenders */
    static final class Outcome {
        String outcome;      /* target_met | degraded | failed | error */
        long elapsedMs;
        double startMs = Double.NaN;   /* start of the attempt that finished, from the call */
        int abandoned, attempts, workers;
        long runId = -1;
        String note = "";
    }

    interface Contender { Outcome run() throws SQLException; String name(); }

    static final class Baseline implements Contender {
        final SeedLoop loop;
        Baseline() throws SQLException { loop = new SeedLoop(url, props, TARGET); }
        public String name() { return "baseline"; }
        public Outcome run() {
            SeedLoop.Result r = loop.run(STATEMENT, CLEANUP, MIN, ATTEMPTS);
            Outcome o = new Outcome();
            o.outcome = r.outcome;
            o.elapsedMs = r.elapsedMs;
            o.abandoned = r.abandoned;
            o.attempts = r.attempts;
            o.workers = r.finalWorkers;
            if (!r.log.isEmpty()) o.startMs = r.log.get(r.log.size() - 1).startMs;
            if (r.finishedBeforeCheck > 0) o.note = r.finishedBeforeCheck + " check(s) after the statement had finished";
            if (r.error != null) o.note = r.error;
            for (SeedLoop.Attempt a : r.log) log("    baseline %s", a);
            return o;
        }
    }

    static final class Extension implements Contender {
        final Connection c;
        final int pid;
        Extension(String app) throws SQLException {
            c = connect(app);
            exec(c, "SET client_min_messages = warning");
            pid = (int) queryLong(c, "SELECT pg_backend_pid()");
        }
        public String name() { return "extension"; }
        public Outcome run() throws SQLException { return call(c, pid, STATEMENT, CLEANUP); }
    }

    static Outcome call(Connection c, int pid, String statement, String cleanup) throws SQLException {
        return call(c, pid, statement, cleanup, CALL);
    }

    static Outcome call(Connection c, int pid, String statement, String cleanup, String sql) throws SQLException {
        Outcome o = new Outcome();
        long t = System.nanoTime();
        long wall = System.currentTimeMillis();
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, statement);
            ps.setString(2, cleanup);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                o.elapsedMs = msSince(t);
                o.outcome = rs.getString(1);
                o.workers = rs.getInt(2);
                o.attempts = rs.getInt(3);
                o.runId = rs.getLong(4);
            }
        } catch (SQLException e) {
            o.elapsedMs = msSince(t);
            o.outcome = "53G01".equals(e.getSQLState()) ? "failed" : "error";
            o.note = e.getSQLState() + " " + e.getMessage().split("\n")[0];
        }
        if (o.runId < 0) {
            try (Statement s = mon.createStatement();
                 ResultSet rs = s.executeQuery("SELECT run_id, attempts, workers_launched FROM parallel_guarantee_runs "
                     + "WHERE caller_pid = " + pid + " ORDER BY run_id DESC LIMIT 1")) {
                if (rs.next()) { o.runId = rs.getLong(1); o.attempts = rs.getInt(2); o.workers = rs.getInt(3); }
            }
        }
        if (o.runId >= 0) {
            o.abandoned = (int) queryLong(mon, "SELECT count(*) FROM parallel_guarantee_attempts WHERE run_id = "
                + o.runId + " AND outcome = 'abandoned'");
            /* the server's clock and this program's are the same machine's */
            long startedWall = queryLong(mon, "SELECT coalesce(max(round(extract(epoch FROM started_at) * 1000)), 0)::bigint "
                + "FROM parallel_guarantee_attempts WHERE run_id = " + o.runId
                + " AND attempt = (SELECT max(attempt) FROM parallel_guarantee_attempts WHERE run_id = " + o.runId + ")");
            if (startedWall > 0) o.startMs = startedWall - wall;
            try (Statement s = mon.createStatement();
                 ResultSet rs = s.executeQuery("SELECT attempt, round(extract(epoch FROM waited) * 1000), "
                     + "round(extract(epoch FROM duration) * 1000), workers_planned, workers_launched, outcome "
                     + "FROM parallel_guarantee_attempts WHERE run_id = " + o.runId + " ORDER BY attempt")) {
                while (rs.next())
                    log("    extension run %d attempt %d: waited %d ms, ran %d ms, %d of %d planned launched, %s",
                        o.runId, rs.getInt(1), rs.getLong(2), rs.getLong(3), rs.getInt(5), rs.getInt(4), rs.getString(6));
            }
        }
        return o;
    }

    /* ------------------------------------------------------------------ one trace, one contender */
    static final class TraceRun {
        Outcome o;
        double freeAtMs, earliestMs, latenessMs, startDelayMs, runMs;
        long busyBefore, queuedBefore;
        String hogNote = "";
    }

    static TraceRun runTrace(TraceSpec t, Contender who, ScheduledExecutorService timer) throws SQLException {
        TraceRun tr = new TraceRun();
        long[] q = waitQuiet();
        tr.busyBefore = q[0];
        tr.queuedBefore = q[1];
        exec(mon, CLEANUP);
        List<Hog> hogs = new ArrayList<>();
        for (HogSpec s : t.hogs()) hogs.add(new Hog(s, "contention-hog"));
        long traceStart = System.nanoTime();
        StringBuilder confirm = new StringBuilder();
        for (Hog h : hogs) {
            if (h.spec.offsetMs() > 0) continue;
            h.start();
            int n = 0;
            long w = System.nanoTime();
            while (msSince(w) < 10000 && (n = h.workersNow()) < h.spec.k()) sleep(5);
            if (n < h.spec.k()) confirm.append(String.format("hog %d held %d of %d; ", h.pid, n, h.spec.k()));
        }
        List<ScheduledFuture<?>> pending = new ArrayList<>();
        for (Hog h : hogs) {
            if (h.spec.offsetMs() <= 0) continue;
            long delay = h.spec.offsetMs() - msSince(traceStart);
            pending.add(timer.schedule(h::start, Math.max(0, delay), TimeUnit.MILLISECONDS));
        }
        long t0 = System.nanoTime();
        log("  trace %d %s (bench time %.1f s): t0 = trace start + %d ms; %s", t.id(), who.name(),
            (t0 - benchStart) / 1e9, (t0 - traceStart) / 1_000_000, confirm);
        tr.o = who.run();
        for (ScheduledFuture<?> f : pending) f.cancel(false);
        for (Hog h : hogs) h.cutShort();
        for (Hog h : hogs) h.finish();
        exec(mon, CLEANUP);
        for (Hog h : hogs)
            log("    hog %s: %s", h.spec.show(), !h.started ? "never started (contender had returned)"
                : String.format(Locale.ROOT, "acquired at %.3f s, released at %.3f s (%s)%s",
                    (h.acquireNs - t0) / 1e9, (h.releaseNs - t0) / 1e9, h.endedWith, h.cut ? ", cut short" : ""));
        tr.freeAtMs = earliestFree(hogs, t0);
        tr.earliestMs = tr.freeAtMs + fullMs;
        tr.latenessMs = tr.o.elapsedMs - tr.earliestMs;
        tr.startDelayMs = tr.o.startMs - tr.freeAtMs;
        tr.runMs = tr.o.elapsedMs - tr.o.startMs;
        tr.hogNote = confirm.toString();
        log("    %s: %s after %d ms, %d attempts, %d abandoned, %d workers; free at %.0f ms, earliest %.0f ms, lateness %.0f ms %s",
            who.name(), tr.o.outcome, tr.o.elapsedMs, tr.o.attempts, tr.o.abandoned, tr.o.workers,
            tr.freeAtMs, tr.earliestMs, tr.latenessMs, tr.o.note);
        return tr;
    }

    static int rank(String outcome) {
        return switch (outcome) { case "target_met" -> 3; case "degraded" -> 2; case "failed" -> 1; default -> 0; };
    }

    static String verdict(boolean ok) { return ok ? "met" : "MISSED"; }

    static void line() { System.out.println("-".repeat(104)); }

    /* ------------------------------------------------------------------ main */
    public static void main(String[] args) throws Exception {
        url = args[0];
        detail = new PrintWriter(new FileWriter(args[1]), true);
        props = new Properties();
        props.setProperty("user", "postgres");
        props.setProperty("loginTimeout", "10");
        long seed = Long.parseLong(System.getenv().getOrDefault("CONTENTION_SEED", "20251122"));
        int regular = Integer.parseInt(System.getenv().getOrDefault("CONTENTION_TRACES", "8"));
        int longOnes = Integer.parseInt(System.getenv().getOrDefault("CONTENTION_LONG", "2"));
        if (regular < 8) { System.err.println("CONTENTION_TRACES must be at least 8"); System.exit(2); }

        mon = connect("contention-driver");
        maxParallelWorkers = (int) queryLong(mon, "SELECT current_setting('max_parallel_workers')::int");
        String maxWait = "";
        try (Statement s = mon.createStatement(); ResultSet rs = s.executeQuery(
                 "SELECT pg_get_function_arguments('run_with_parallel_guarantee'::regproc)")) {
            rs.next();
            String a = rs.getString(1);
            int i = a.indexOf("max_wait");
            maxWait = i < 0 ? "?" : a.substring(i, Math.min(a.length(), a.indexOf(',', i) < 0 ? a.length() : a.indexOf(',', i)));
        }

        /* -------- full degree, no contention */
        System.err.println("contention: measuring the statement at full degree ...");
        waitQuiet();
        String launched = "?";
        try (Connection c = connect("contention-full")) {
            exec(c, "SET max_parallel_workers_per_gather = " + TARGET);
            exec(c, CLEANUP);
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + STATEMENT)) {
                while (rs.next()) {
                    String l = rs.getString(1).trim();
                    if (l.startsWith("Workers Launched")) launched = l.replace("Workers Launched: ", "");
                }
            }
            exec(c, CLEANUP);
            List<Double> ds = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                waitQuiet();
                long t = System.nanoTime();
                exec(c, STATEMENT);
                ds.add((double) msSince(t));
                exec(c, CLEANUP);
            }
            /* The earliest possible finish: the fastest run.  Other load on the machine only
             * ever makes a run slower, and one slow reference would make every lateness look
             * small (or negative). */
            fullMs = Math.round(ds.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN));
            fullAll = ds.stream().map(d -> String.valueOf(Math.round(d))).reduce((a, b) -> a + ", " + b).orElse("");
            log("full degree direct: %s ms (Workers Launched %s)", ds, launched);
        }
        Extension ext = new Extension("contention-extension");
        List<Double> vs = new ArrayList<>();
        String viaWorkers = "";
        for (int i = 0; i < 3; i++) {
            waitQuiet();
            Outcome o = ext.run();
            vs.add((double) o.elapsedMs);
            viaWorkers += (viaWorkers.isEmpty() ? "" : ", ") + o.outcome + "/" + o.workers;
            exec(mon, CLEANUP);
        }
        long viaMs = Math.round(vs.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN));
        String viaAll = vs.stream().map(d -> String.valueOf(Math.round(d))).reduce((a, b) -> a + ", " + b).orElse("");
        log("full degree via the function: %s ms (%s)", vs, viaWorkers);

        System.out.printf(Locale.ROOT, "statement   %s;  cleanup %s%n", STATEMENT, CLEANUP);
        System.out.printf(Locale.ROOT,
            "full degree (no contention, fastest of 5 direct / 3 via): direct %d ms (runs %s; Workers Launched: %s);%n"
            + "            through the function %d ms (runs %s; %s)%n",
            fullMs, fullAll, launched, viaMs, viaAll, viaWorkers);
        System.out.printf(Locale.ROOT,
            "contenders  baseline = SeedLoop (start async, check after 1 s, cancel + cleanup + sleep 2 s, 5 attempts, accept best >= 2)%n"
            + "            extension = run_with_parallel_guarantee(stmt, cleanup, target_workers=>4, min_workers=>2, max_attempts=>5),%n"
            + "                        defaults otherwise (wait_for_slots true, %s)%n", maxWait.replace(" DEFAULT ", " default "));
        if (fullMs < 1150)
            System.out.println("WARNING     the statement takes under 1.15 s at full degree: the seed's 1 s check may find it already "
                + "finished (it then counts 0 workers); raise CONTENTION_ROWS");
        line();

        /* -------- traces */
        List<TraceSpec> traces = makeTraces(seed, regular, longOnes);
        Baseline base = new Baseline();
        ScheduledExecutorService timer = Executors.newScheduledThreadPool(2);
        System.out.printf(Locale.ROOT, "1. Contention traces (seed %d): %d with the shortage ending 0.5-4 s after t=0, %d long "
            + "(5-8 s, 8.5-11.5 s alternately)%n", seed, regular, longOnes);
        System.out.printf(Locale.ROOT, "   max_parallel_workers = %d; hogs at offset 0 are confirmed holding before t=0 (the statement's "
            + "start); times are in seconds from t=0.%n"
            + "   free at   = first moment >= 0 with %d workers free (replaying the hogs' observed start/release; hogs only)%n"
            + "   earliest  = free at + %d ms (full degree, direct, fastest run);  lateness = finished - earliest%n"
            + "   started   = start of the attempt that finished (extension: its history's started_at);  delay = started - free at%n"
            + "   the contenders alternate which goes first; per-attempt detail in the log%n", maxParallelWorkers, TARGET, fullMs);
        System.out.println();
        System.out.printf(Locale.ROOT, "   %-10s %8s %8s %8s %8s %9s %8s %9s %7s  %-11s %s%n",
            "contender", "free at", "earliest", "started", "finished", "lateness", "delay", "abandoned", "workers", "outcome", "note");
        List<TraceRun[]> runs = new ArrayList<>();
        long maxBusy = 0, maxQueued = 0;
        int confirmProblems = 0;
        for (TraceSpec t : traces) {
            System.err.printf("contention: trace %d/%d (%s) ...%n", t.id(), traces.size(), t.pattern());
            StringBuilder desc = new StringBuilder();
            for (HogSpec h : t.hogs()) desc.append(desc.length() == 0 ? "" : "; ").append(h.show());
            System.out.printf(Locale.ROOT, "   trace %d [%s] hogs: %s%n", t.id(), t.pattern(), desc);
            log("trace %d [%s]: %s", t.id(), t.pattern(), desc);
            TraceRun b, e;
            if (t.id() % 2 == 1) { b = runTrace(t, base, timer); e = runTrace(t, ext, timer); }
            else { e = runTrace(t, ext, timer); b = runTrace(t, base, timer); }
            runs.add(new TraceRun[] {b, e});
            for (TraceRun tr : new TraceRun[] {b, e}) {
                maxBusy = Math.max(maxBusy, tr.busyBefore);
                maxQueued = Math.max(maxQueued, tr.queuedBefore);
                if (!tr.hogNote.isEmpty()) confirmProblems++;
            }
            for (int i = 0; i < 2; i++) {
                TraceRun tr = i == 0 ? b : e;
                String note = tr.o.note + (tr.hogNote.isEmpty() ? "" : " [" + tr.hogNote.trim() + "]");
                System.out.printf(Locale.ROOT, "   %-10s %8s %8s %8s %8s %9s %8s %9d %7d  %-11s %s%n",
                    i == 0 ? "baseline" : "extension", secs(tr.freeAtMs), secs(tr.earliestMs), secs(tr.o.startMs),
                    secs(tr.o.elapsedMs), msSigned(tr.latenessMs), msSigned(tr.startDelayMs), tr.o.abandoned, tr.o.workers,
                    tr.o.outcome, note);
            }
        }
        timer.shutdownNow();

        /* -------- summary */
        List<Double> lb = new ArrayList<>(), le = new ArrayList<>(), fb = new ArrayList<>(), fe = new ArrayList<>();
        List<Double> ab = new ArrayList<>(), ae = new ArrayList<>();
        List<Double> db = new ArrayList<>(), de = new ArrayList<>(), rb = new ArrayList<>(), re = new ArrayList<>();
        int both = 0, totalB = 0, totalE = 0;
        int[] cb = new int[4], ce = new int[4];
        List<String> worse = new ArrayList<>(), better = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            TraceRun b = runs.get(i)[0], e = runs.get(i)[1];
            totalB += b.o.abandoned;
            totalE += e.o.abandoned;
            ab.add((double) b.o.abandoned);
            ae.add((double) e.o.abandoned);
            fb.add((double) b.o.elapsedMs);
            fe.add((double) e.o.elapsedMs);
            cb[rank(b.o.outcome)]++;
            ce[rank(e.o.outcome)]++;
            if (rank(e.o.outcome) < rank(b.o.outcome)) worse.add("trace " + traces.get(i).id() + " (" + e.o.outcome + " vs " + b.o.outcome + ")");
            if (rank(e.o.outcome) > rank(b.o.outcome)) better.add("trace " + traces.get(i).id() + " (" + e.o.outcome + " vs " + b.o.outcome + ")");
            if ("target_met".equals(b.o.outcome) && "target_met".equals(e.o.outcome)) {
                both++;
                lb.add(b.latenessMs);
                le.add(e.latenessMs);
                db.add(b.startDelayMs);
                de.add(e.startDelayMs);
                rb.add(b.runMs);
                re.add(e.runMs);
            }
        }
        double mlb = median(lb), mle = median(le);
        System.out.println();
        System.out.printf(Locale.ROOT, "   summary over %d traces (lateness: the %d traces where both met the target)%n", runs.size(), both);
        System.out.printf(Locale.ROOT, "   %-34s %12s %12s   %-34s %s%n", "", "baseline", "extension", "target", "");
        System.out.printf(Locale.ROOT, "   %-34s %12s %12s   %-34s %s%n", "median lateness", msSigned(mlb), msSigned(mle),
            "extension < 100 ms", verdict(mle < 100));
        System.out.printf(Locale.ROOT, "   %-34s %12s %12s   %-34s %s%n", "", "", "",
            String.format(Locale.ROOT, "extension <= baseline / 10 (%.0f ms)", mlb / 10), verdict(mle <= mlb / 10));
        System.out.printf(Locale.ROOT, "   %-34s %12s %12s   %s%n", "  of which: median start delay", msSigned(median(db)),
            msSigned(median(de)), "(free at -> the finishing attempt's start)");
        System.out.printf(Locale.ROOT, "   %-34s %12s %12s   %s%n", "  median run of that attempt", String.format(Locale.ROOT, "%.0f ms", median(rb)),
            String.format(Locale.ROOT, "%.0f ms", median(re)), String.format(Locale.ROOT, "(full degree without contention: %d ms)", fullMs));
        System.out.printf(Locale.ROOT, "   %-34s %10s s %10s s%n", "median time to finish", secs(median(fb)), secs(median(fe)));
        System.out.printf(Locale.ROOT, "   %-34s %12d %12d   %-34s %s%n", "abandoned attempts, total", totalB, totalE,
            String.format(Locale.ROOT, "extension <= baseline / 5 (%.1f)", totalB / 5.0), verdict(totalE * 5 <= totalB));
        System.out.printf(Locale.ROOT, "   %-34s %12.1f %12.1f%n", "abandoned attempts, median", median(ab), median(ae));
        System.out.printf(Locale.ROOT, "   %-34s %12s %12s   %-34s %s%n", "outcomes met/degraded/failed/error",
            cb[3] + "/" + cb[2] + "/" + cb[1] + "/" + cb[0], ce[3] + "/" + ce[2] + "/" + ce[1] + "/" + ce[0],
            "never worse than the baseline", verdict(worse.isEmpty()));
        if (!worse.isEmpty()) System.out.println("   extension worse on: " + String.join(", ", worse));
        if (!better.isEmpty()) System.out.println("   extension better on: " + String.join(", ", better));
        if (mle < -50 || mlb < -50)
            System.out.println("   WARNING a median lateness is negative: the full-degree reference run was slower than the runs in "
                + "the traces (the machine's load changed); compare the start delays instead");
        if (maxBusy > 0 || maxQueued > 0 || confirmProblems > 0)
            System.out.printf(Locale.ROOT, "   WARNING other activity: up to %d parallel workers and %d queued guaranteed runs of "
                + "other sessions at a trace start; %d hog confirmations fell short%n", maxBusy, maxQueued, confirmProblems);
        line();

        /* -------- 4 concurrent guaranteed runs, 6 of 8 free */
        System.err.println("contention: 4 concurrent guaranteed runs ...");
        concurrent();
        base.loop.close();
        detail.close();
    }

    /* Part 2's call: the same arguments, with a queue wait long enough for the 4th run. */
    static final String CALL_QUEUED = CALL.replace("max_wait => '8 seconds')", "max_wait => '60 seconds')");

    record Phase(Outcome[] runs, long[] endMs, long[] waited, long totalMs) { }

    static Phase atOnce(Connection[] cs, int[] pids, String[] stmts, String[] cleanups) throws Exception {
        int n = cs.length;
        Outcome[] at = new Outcome[n];
        long[] endMs = new long[n];
        CountDownLatch ready = new CountDownLatch(n), go = new CountDownLatch(1);
        Thread[] ts = new Thread[n];
        long[] t0 = new long[1];
        for (int i = 0; i < n; i++) {
            final int k = i;
            ts[i] = new Thread(() -> {
                try {
                    ready.countDown();
                    go.await();
                    at[k] = call(cs[k], pids[k], stmts[k], cleanups[k], CALL_QUEUED);
                } catch (Exception e) {
                    at[k] = new Outcome();
                    at[k].outcome = "error";
                    at[k].note = e.toString();
                }
                endMs[k] = msSince(t0[0]);
            });
            ts[i].start();
        }
        ready.await();
        t0[0] = System.nanoTime();
        go.countDown();
        for (Thread t : ts) t.join();
        long total = msSince(t0[0]);
        for (String c : cleanups) exec(mon, c);
        long[] waited = new long[n];
        for (int i = 0; i < n; i++)
            if (at[i].runId >= 0)
                waited[i] = queryLong(mon, "SELECT coalesce(round(sum(extract(epoch FROM waited)) * 1000), 0)::bigint "
                    + "FROM parallel_guarantee_attempts WHERE run_id = " + at[i].runId);
        return new Phase(at, endMs, waited, total);
    }

    static Phase oneAfterAnother(Connection c, int pid, String[] stmts, String[] cleanups) throws SQLException {
        int n = stmts.length;
        Outcome[] seq = new Outcome[n];
        long[] endMs = new long[n];
        long s0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            seq[i] = call(c, pid, stmts[i], cleanups[i], CALL_QUEUED);
            endMs[i] = msSince(s0);
        }
        long total = msSince(s0);
        for (String cl : cleanups) exec(mon, cl);
        return new Phase(seq, endMs, new long[n], total);
    }

    static boolean allFull(Phase p) {
        for (Outcome o : p.runs())
            if (!"target_met".equals(o.outcome) || o.workers != TARGET || o.abandoned != 0) return false;
        return true;
    }

    /*
     * 4 guaranteed runs at once with 6 of 8 workers free (a hog holds 2), against the same 4
     * runs one after another on one connection.  Two rounds in the order at once, one after
     * another, one after another, at once, so that a drift in the machine's load cancels out.
     */
    static void concurrent() throws Exception {
        final int n = 4;
        waitQuiet();
        for (int i = 1; i <= n; i++) exec(mon, "DROP TABLE IF EXISTS tmp_c" + i);
        Hog hog = new Hog(new HogSpec(2, 0, 600000), "contention-hog");
        hog.start();
        long w = System.nanoTime();
        int held;
        while ((held = hog.workersNow()) < 2 && msSince(w) < 10000) sleep(5);
        long busy = parallelWorkersBusy();
        Connection[] cs = new Connection[n];
        int[] pids = new int[n];
        for (int i = 0; i < n; i++) {
            cs[i] = connect("contention-concurrent-" + (i + 1));
            exec(cs[i], "SET client_min_messages = warning");
            pids[i] = (int) queryLong(cs[i], "SELECT pg_backend_pid()");
        }
        String[] stmts = new String[n], cleanups = new String[n];
        for (int i = 0; i < n; i++) {
            stmts[i] = STATEMENT.replace("tmp_x", "tmp_c" + (i + 1));
            cleanups[i] = CLEANUP.replace("tmp_x", "tmp_c" + (i + 1));
        }
        Phase c1 = atOnce(cs, pids, stmts, cleanups);
        Phase s1 = oneAfterAnother(cs[0], pids[0], stmts, cleanups);
        Phase s2 = oneAfterAnother(cs[0], pids[0], stmts, cleanups);
        Phase c2 = atOnce(cs, pids, stmts, cleanups);
        long busyEnd = parallelWorkersBusy();
        hog.cutShort();
        hog.finish();
        for (Connection c : cs) c.close();

        System.out.printf(Locale.ROOT, "2. %d guaranteed runs at once, each target 4 (min 2, 5 attempts, max_wait 60 s), while a hog holds "
            + "%d of %d workers%n   (parallel workers busy at the start: %d, at the end: %d, the hog's included); "
            + "order: at once, one after another x2, at once%n", n, held, maxParallelWorkers, busy, busyEnd);
        System.out.println();
        System.out.printf(Locale.ROOT, "   %-8s %-7s %-11s %8s %9s %9s %10s %10s %12s%n",
            "round", "run", "status", "workers", "attempts", "abandoned", "waited", "elapsed", "returned at");
        long maxWaited = 0;
        for (int r = 0; r < 2; r++) {
            Phase p = r == 0 ? c1 : c2;
            for (int i = 0; i < n; i++) {
                Outcome o = p.runs()[i];
                maxWaited = Math.max(maxWaited, p.waited()[i]);
                System.out.printf(Locale.ROOT, "   %-8s %-7s %-11s %8d %9d %9d %7d ms %7d ms %9d ms  %s%n",
                    "at once " + (r + 1), "tmp_c" + (i + 1), o.outcome, o.workers, o.attempts, o.abandoned,
                    p.waited()[i], o.elapsedMs, p.endMs()[i], o.note);
            }
        }
        for (int r = 0; r < 2; r++) {
            Phase p = r == 0 ? s1 : s2;
            StringBuilder d = new StringBuilder();
            for (Outcome o : p.runs())
                d.append(d.length() == 0 ? "" : ", ").append(o.elapsedMs).append(" ms ").append(o.outcome).append('/').append(o.workers)
                 .append(o.abandoned > 0 ? " (" + o.abandoned + " abandoned)" : "");
            System.out.printf(Locale.ROOT, "   one after another %d: %s%n", r + 1, d);
        }
        boolean allOk = allFull(c1) && allFull(c2);
        long atOnceMs = c1.totalMs() + c2.totalMs(), seqMs = s1.totalMs() + s2.totalMs();
        double ratio = (double) atOnceMs / seqMs;
        System.out.println();
        System.out.printf(Locale.ROOT, "   at once: %s with 4 workers and no abandoned attempt%-20s %s%n",
            allOk ? "every run finished" : "NOT every run finished", "", verdict(allOk));
        System.out.printf(Locale.ROOT, "   total at once %d + %d ms vs one after another %d + %d ms: ratio %.3f (rounds: %.3f, %.3f), "
            + "target <= 1.10   %s%n", c1.totalMs(), c2.totalMs(), s1.totalMs(), s2.totalMs(), ratio,
            (double) c1.totalMs() / s1.totalMs(), (double) c2.totalMs() / s2.totalMs(), verdict(ratio <= 1.10));
        System.out.printf(Locale.ROOT, "   longest queue wait %d ms (a max_wait of 8 s, the pre-1.0 default at 5 attempts, would have "
            + "made a run waiting longer start its last attempt short)%n", maxWaited);
        if (!allFull(s1) || !allFull(s2)) System.out.println("   note: a run one after another did not meet its target (see above)");
    }
}
