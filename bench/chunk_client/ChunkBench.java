import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * Drives the chunked-batch benchmark over one JDBC connection, so that every case is timed
 * the same way (System.nanoTime around the work, connection and JVM start excluded):
 *
 *   plain        one UPDATE of the matching passes
 *   chunks_w1    SELECT ... FROM run_in_chunks(keys, action, chunk_size, workers => 1)
 *   chunks_w2    the same with workers => 2
 *   client_loop  a hand-tuned client chunk loop: fetch the keys, then per chunk send
 *                one UPDATE ... WHERE id = ANY (?) and COMMIT
 *   item_writer  what the seed's Spring Batch step sends (JpaItemWriter: one UPDATE per
 *                item, the chunk's items in one JDBC batch, then COMMIT), after fetching
 *                the keys
 *   seed_step    the seed's step as it is configured: the cursor reader fetches the
 *                matching passes (whole rows); per chunk, JpaItemWriter merges each item
 *                (Hibernate loads it: one SELECT by id) and flushes one UPDATE of its
 *                columns per item, one round trip each (the seed sets no JDBC batch size),
 *                and the job repository updates the step execution, then COMMIT
 *
 * Before every timed run the passes are generated afresh (untimed; same rows, same matching
 * fraction) and vacuumed; after it the outcome is checked (untimed).  One untimed warm-up
 * round first; then `runs` rounds, each running every case once, the order rotating from
 * round to round.  Prints one line per timed run: case|round|ms|rows.  For each call of
 * run_in_chunks it also records, untimed, when the call was sent (bench_chunk_calls: run id,
 * the client's clock just before sending), so that the time from the call to the run's first
 * chunk can be read from the chunk history.  At the end, on fresh passes, the keys query's
 * own time in this warm session: EXPLAIN (ANALYZE, TIMING OFF) eleven times, planning plus
 * execution, one line each: keys|i|ms|rows.
 *
 *   java ChunkBench JDBC-URL ROWS RUNS CHUNK_SIZE
 */
public class ChunkBench {
    static final String FILTER = "status = 'IN_PROGRESS' AND (ends_at < now() OR remaining = 0)";
    static final String KEYS = "SELECT id FROM passes WHERE " + FILTER + " ORDER BY id";
    static final String ACTION = "UPDATE passes SET status = 'EXPIRED' WHERE id = ANY ($1)";
    static final String[] CASES = {"plain", "chunks_w1", "chunks_w2", "client_loop", "item_writer", "seed_step"};

    static Connection conn;
    static int rows;
    static int chunkSize;
    static long expiredBefore;
    static long[] lastCall;   /* run_in_chunks: run id, and when it was sent (epoch microseconds) */

    public static void main(String[] args) throws Exception {
        String url = args[0];
        rows = Integer.parseInt(args[1]);
        int runs = Integer.parseInt(args[2]);
        chunkSize = Integer.parseInt(args[3]);
        conn = DriverManager.getConnection(url);
        conn.setAutoCommit(true);
        exec("SET client_min_messages = warning");
        exec("DROP TABLE IF EXISTS passes");
        exec("CREATE TABLE passes (id bigint PRIMARY KEY, status text NOT NULL, "
             + "ends_at timestamptz NOT NULL, remaining integer NOT NULL)");
        /* Spring Batch's BATCH_STEP_EXECUTION, reduced to what a chunk commit updates. */
        exec("DROP TABLE IF EXISTS batch_step_execution");
        exec("CREATE TABLE batch_step_execution (step_execution_id bigint PRIMARY KEY, version bigint NOT NULL, "
             + "commit_count bigint NOT NULL, read_count bigint NOT NULL, write_count bigint NOT NULL, "
             + "last_updated timestamptz NOT NULL)");
        exec("INSERT INTO batch_step_execution VALUES (1, 0, 0, 0, 0, now())");
        exec("DROP TABLE IF EXISTS bench_chunk_calls");
        exec("CREATE TABLE bench_chunk_calls (run_id bigint PRIMARY KEY, called_at timestamptz NOT NULL)");

        for (int round = 0; round <= runs; round++) {           /* round 0: warm-up */
            for (int i = 0; i < CASES.length; i++) {
                String c = CASES[(i + round) % CASES.length];
                long expected = reset();
                long t0 = System.nanoTime();
                long changed = run(c);
                long t1 = System.nanoTime();
                verify(c, expected, changed);
                if (lastCall != null) {
                    exec("INSERT INTO bench_chunk_calls VALUES (" + lastCall[0] + ", timestamptz 'epoch' + " + lastCall[1] + " * interval '1 microsecond')");
                    lastCall = null;
                }
                if (round > 0)
                    System.out.printf("%s|%d|%.1f|%d%n", c, round, (t1 - t0) / 1e6, changed);
                else
                    System.err.printf("warm-up %s: %.1f ms%n", c, (t1 - t0) / 1e6);
            }
        }
        keysQueryAlone();
        conn.close();
    }

    /* The keys query's own time in this warm session: planning plus execution, server-side. */
    static void keysQueryAlone() throws SQLException {
        reset();
        for (int i = 0; i <= 11; i++) {                    /* i = 0: warm-up */
            double ms = 0;
            long matched = -1;
            try (Statement s = conn.createStatement();
                 ResultSet r = s.executeQuery("EXPLAIN (ANALYZE, TIMING OFF, SUMMARY) " + KEYS)) {
                while (r.next()) {
                    String line = r.getString(1).trim();
                    if (line.startsWith("Planning Time:") || line.startsWith("Execution Time:"))
                        ms += Double.parseDouble(line.replaceAll("[^0-9.]", ""));
                    else if (matched < 0 && line.contains("rows=") && line.contains("actual"))
                        matched = Long.parseLong(line.replaceAll(".*actual rows=([0-9]+).*", "$1"));
                }
            }
            if (i > 0) System.out.printf("keys|%d|%.3f|%d%n", i, ms, matched);
        }
    }

    static void exec(String sql) throws SQLException {
        try (Statement s = conn.createStatement()) {
            s.execute(sql);
        }
    }

    static long scalar(String sql) throws SQLException {
        try (Statement s = conn.createStatement(); ResultSet r = s.executeQuery(sql)) {
            r.next();
            return r.getLong(1);
        }
    }

    /* Fresh passes: a third expired already, 40 % ended, every 7th with nothing left. */
    static long reset() throws SQLException {
        exec("TRUNCATE passes");
        exec("INSERT INTO passes (id, status, ends_at, remaining) "
             + "SELECT g, CASE WHEN g % 3 = 0 THEN 'EXPIRED' ELSE 'IN_PROGRESS' END, "
             + "CASE WHEN g % 5 < 2 THEN timestamptz '2020-01-01' + g * interval '1 minute' "
             + "ELSE timestamptz '2999-01-01' + g * interval '1 minute' END, "
             + "CASE WHEN g % 7 = 0 THEN 0 ELSE 1 + g % 30 END FROM generate_series(1, " + rows + ") g");
        exec("VACUUM ANALYZE passes");
        expiredBefore = scalar("SELECT count(*) FROM passes WHERE status = 'EXPIRED'");
        return scalar("SELECT count(*) FROM passes WHERE " + FILTER);
    }

    static long run(String c) throws SQLException {
        switch (c) {
            case "plain":
                try (Statement s = conn.createStatement()) {
                    return s.executeUpdate("UPDATE passes SET status = 'EXPIRED' WHERE " + FILTER);
                }
            case "chunks_w1":
            case "chunks_w2":
                try (PreparedStatement p = conn.prepareStatement(
                         "SELECT status, rows_changed, run_id FROM run_in_chunks(?, ?, chunk_size => ?, workers => ?)")) {
                    p.setString(1, KEYS);
                    p.setString(2, ACTION);
                    p.setInt(3, chunkSize);
                    p.setInt(4, c.equals("chunks_w1") ? 1 : 2);
                    Instant sent = Instant.now();
                    long changed;
                    long runId;
                    try (ResultSet r = p.executeQuery()) {
                        r.next();
                        if (!r.getString(1).equals("done")) throw new IllegalStateException(c + ": status " + r.getString(1));
                        changed = r.getLong(2);
                        runId = r.getLong(3);
                    }
                    lastCall = new long[] {runId, sent.getEpochSecond() * 1_000_000L + sent.getNano() / 1000};
                    return changed;
                }
            case "client_loop":
                return clientLoop();
            case "item_writer":
                return itemWriter();
            case "seed_step":
                return seedStep();
            default:
                throw new IllegalArgumentException(c);
        }
    }

    /* A client chunk loop at its best: one UPDATE per chunk, over this one connection. */
    static long clientLoop() throws SQLException {
        conn.setAutoCommit(false);
        try {
            List<Long> keys = fetchKeys();
            long changed = 0;
            try (PreparedStatement up = conn.prepareStatement(
                     "UPDATE passes SET status = 'EXPIRED' WHERE id = ANY (?)")) {
                for (int from = 0; from < keys.size(); from += chunkSize) {
                    List<Long> chunk = keys.subList(from, Math.min(from + chunkSize, keys.size()));
                    Array a = conn.createArrayOf("bigint", chunk.toArray(new Long[0]));
                    up.setArray(1, a);
                    changed += up.executeUpdate();
                    conn.commit();
                    a.free();
                }
            }
            return changed;
        } finally {
            conn.setAutoCommit(true);
        }
    }

    static List<Long> fetchKeys() throws SQLException {
        List<Long> keys = new ArrayList<>();
        try (Statement s = conn.createStatement()) {
            s.setFetchSize(10000);
            try (ResultSet r = s.executeQuery(KEYS)) {
                while (r.next()) keys.add(r.getLong(1));
            }
        }
        conn.commit();
        return keys;
    }

    /*
     * The seed's writer: JpaItemWriter merges each item, and Hibernate flushes one UPDATE
     * per item at the chunk's commit, sent as one JDBC batch (hibernate.jdbc.batch_size set;
     * without it, one round trip per item, slower still).
     */
    static long itemWriter() throws SQLException {
        conn.setAutoCommit(false);
        try {
            List<Long> keys = fetchKeys();
            long changed = 0;
            try (PreparedStatement up = conn.prepareStatement(
                     "UPDATE passes SET status = 'EXPIRED' WHERE id = ?")) {
                for (int from = 0; from < keys.size(); from += chunkSize) {
                    for (Long id : keys.subList(from, Math.min(from + chunkSize, keys.size()))) {
                        up.setLong(1, id);
                        up.addBatch();
                    }
                    for (int n : up.executeBatch()) changed += n;
                    conn.commit();
                }
            }
            return changed;
        } finally {
            conn.setAutoCommit(true);
        }
    }

    /*
     * The seed's step as configured (JpaCursorItemReader, JpaItemWriter, no JDBC batching):
     * the reader's query returns the whole matching rows; each chunk's items are merged (a
     * SELECT by id each) and flushed (an UPDATE of the entity's columns each), the step
     * execution is updated, and the chunk commits.
     */
    static long seedStep() throws SQLException {
        List<Object[]> items = new ArrayList<>();
        conn.setAutoCommit(false);
        try {
            try (Statement s = conn.createStatement();
                 ResultSet r = s.executeQuery("SELECT id, status, ends_at, remaining FROM passes WHERE " + FILTER)) {
                while (r.next())
                    items.add(new Object[] {r.getLong(1), r.getString(2), r.getTimestamp(3), r.getInt(4)});
            }
            conn.commit();
            long changed = 0;
            try (PreparedStatement load = conn.prepareStatement(
                     "SELECT id, status, ends_at, remaining FROM passes WHERE id = ?");
                 PreparedStatement up = conn.prepareStatement(
                     "UPDATE passes SET status = ?, ends_at = ?, remaining = ? WHERE id = ?");
                 PreparedStatement step = conn.prepareStatement(
                     "UPDATE batch_step_execution SET version = version + 1, commit_count = commit_count + 1, "
                     + "read_count = read_count + ?, write_count = write_count + ?, last_updated = now() "
                     + "WHERE step_execution_id = 1")) {
                for (int from = 0; from < items.size(); from += chunkSize) {
                    List<Object[]> chunk = items.subList(from, Math.min(from + chunkSize, items.size()));
                    for (Object[] item : chunk) {
                        load.setLong(1, (Long) item[0]);
                        try (ResultSet r = load.executeQuery()) {
                            r.next();
                        }
                    }
                    for (Object[] item : chunk) {
                        up.setString(1, "EXPIRED");
                        up.setTimestamp(2, (java.sql.Timestamp) item[2]);
                        up.setInt(3, (Integer) item[3]);
                        up.setLong(4, (Long) item[0]);
                        changed += up.executeUpdate();
                    }
                    step.setInt(1, chunk.size());
                    step.setInt(2, chunk.size());
                    step.executeUpdate();
                    conn.commit();
                }
            }
            return changed;
        } finally {
            conn.setAutoCommit(true);
        }
    }

    /* Exactly the matching passes expired: none left, none else changed. */
    static void verify(String c, long expected, long changed) throws SQLException {
        long left = scalar("SELECT count(*) FROM passes WHERE " + FILTER);
        long expired = scalar("SELECT count(*) FROM passes WHERE status = 'EXPIRED'");
        if (changed != expected || left != 0 || expired != expiredBefore + expected)
            throw new IllegalStateException(c + ": changed " + changed + " of " + expected + ", " + left
                                            + " left, " + expired + " expired in all");
    }
}
