import Foundation
import Logging
import PostgresNIO
import Testing
import TestSupport

/// Faults against real runner processes (skipper-test-runner: skipper-runner's kinds plus `trace`, which records
/// every execution's start and end in the table `executions`) and a real PostgreSQL.
@Suite struct FaultProcessTests {
    static let executions = """
        CREATE TABLE executions (job_id bigint NOT NULL, lease bigint NOT NULL, pid integer NOT NULL,
                                 started_at timestamptz NOT NULL, ended_at timestamptz)
        """

    /// Pairs of executions of one job that overlap in time: a later claim that started before an earlier one ended.
    static let overlaps = """
        SELECT count(*) FROM executions a JOIN executions b ON a.job_id = b.job_id AND a.lease < b.lease
        WHERE b.started_at < coalesce(a.ended_at, 'infinity')
        """

    /// A runner whose heartbeat stalls past its lease (its row locked by another session for longer than
    /// RESCUE_AFTER) kept running its jobs while the leader rescued them, and they ran twice at once. Now it stops
    /// them itself, before anyone may rescue them, and claims again once its heartbeat lands.
    @Test func aStalledHeartbeatNeverRunsAJobTwiceAtOnce() async throws {
        try await withTestDatabase { db in
            try await db.query(PostgresQuery(unsafeSQL: Self.executions))
            try await db.query("INSERT INTO skipper.jobs (kind, args) SELECT 'trace', '{\"ms\": 6000}' FROM generate_series(1, 6)")
            let env = ["RESCUE_AFTER": "3s", "WORKERS": "6", "POLL_INTERVAL": "200ms"]
            let stalled = try ChildProcess.skipper("skipper-test-runner", url: db.url, environment: env)
            defer { stalled.killNow() }
            #expect(try await eventually(timeout: .seconds(30)) { try await db.scalar("SELECT count(*) FROM executions") == "6" }, "\(stalled.log)")
            let runnerID = try #require(try await db.scalar("SELECT id FROM skipper.runners"))
            // Another session holds the runner's row for 9 s: its heartbeats cannot land.
            let locker = Task {
                try await db.withClient(maxConnections: 1) { postgres in
                    try await postgres.withTransaction(logger: Logger(label: "test")) { connection in
                        try await connection.query("SELECT 1 FROM skipper.runners WHERE id = \(runnerID) FOR UPDATE", logger: Logger(label: "test"))
                        try await Task.sleep(for: .seconds(9))
                    }
                }
            }
            let other = try ChildProcess.skipper("skipper-test-runner", url: db.url, environment: env)
            defer { other.killNow() }
            let done = try await eventually(timeout: .seconds(60), every: .milliseconds(200)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'") == "6"
            }
            try await locker.value
            #expect(done, "\(stalled.log)\n---\n\(other.log)")
            let history = try await db.query("SELECT job_id, lease, pid, started_at::text, ended_at::text FROM executions ORDER BY job_id, lease")
            #expect(try await db.scalar(PostgresQuery(unsafeSQL: Self.overlaps)) == "0", "\(history)")
            // The stalled runner stopped its jobs itself (6 executions cut short), and they ran again.
            #expect(try await db.scalar("SELECT count(*) > 6 FROM executions") == "true")
            #expect(stalled.stderr.contains("lease ran out"), "\(stalled.log)")
            // Its heartbeat landed again once the lock went: it is alive and serving.
            #expect(try await eventually(timeout: .seconds(10)) {
                try await db.scalar("SELECT count(*) FROM skipper.runners WHERE heartbeat_at > now() - interval '3 seconds'") == "2"
            })
            #expect(stalled.isRunning)
        }
    }

    /// Three runners drain while one is killed -9, the runners' connections are terminated, one runner's heartbeat
    /// stalls past its lease, and PostgreSQL restarts. Every job ends in a final state, none is lost, no two
    /// executions of one job overlap, and each settlement publishes once.
    @Test func chaosLosesNothingAndNeverRunsAJobTwiceAtOnce() async throws {
        try await PrivateCluster.with { cluster in
            let db = TestDatabase(config: cluster.config)
            try await db.query(PostgresQuery(unsafeSQL: Self.executions))
            // Each publish writes its CSV's first chunk once: count them.
            try await db.query("CREATE TABLE publishes (job_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())")
            try await db.query(
                """
                CREATE FUNCTION record_publish() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO publishes (job_id) VALUES (NEW.job_id); RETURN NULL; END $$
                """)
            try await db.query(
                "CREATE TRIGGER record_publish AFTER INSERT ON skipper.job_artifacts FOR EACH ROW WHEN (NEW.seq = 0) EXECUTE FUNCTION record_publish()")
            try await db.query(
                """
                INSERT INTO transactions (merchant_id, amount_cents, fee_cents, status, paid_at)
                SELECT 1 + i % 20, 1000 + i % 500, 30, 'PAID', '2025-01-01'::timestamptz + (i % (31 * 24)) * interval '1 hour'
                FROM generate_series(1, 40000) i
                """)
            try await db.query(
                """
                INSERT INTO skipper.jobs (kind, args, max_attempts)
                SELECT 'trace', jsonb_build_object('ms', 200 + (i * 37) % 1300), 50 FROM generate_series(1, 700) i
                """)
            try await db.query(
                """
                INSERT INTO skipper.jobs (kind, args, max_attempts)
                SELECT 'settlement', '{"from": "2025-01-01", "to": "2025-01-31", "batch_size": 500, "parallelism": 1}', 50
                FROM generate_series(1, 3)
                """)
            let env = ["RESCUE_AFTER": "3s", "WORKERS": "8", "POLL_INTERVAL": "200ms", "CANCEL_SWEEP": "500ms"]
            var runners = try (0..<3).map { _ in try ChildProcess.skipper("skipper-test-runner", url: cluster.url, environment: env) }
            defer { for runner in runners { runner.killNow() } }
            #expect(try await eventually(timeout: .seconds(30)) { try await db.scalar("SELECT count(*) FROM skipper.runners") == "3" })

            // 1. kill -9 a runner mid-drain.
            try await Task.sleep(for: .seconds(3))
            let killed = runners[0].pid
            runners[0].signal(SIGKILL)
            _ = await runners[0].waitForExit(timeout: .seconds(5))
            let killedAt = try #require(try await db.scalar("SELECT clock_timestamp()::text"))
            runners.append(try ChildProcess.skipper("skipper-test-runner", url: cluster.url, environment: env))

            // 2. Terminate every connection the runners hold.
            try await Task.sleep(for: .seconds(2))
            try await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'skipper-test-runner%'")

            // 3. Stall one runner's heartbeat past its lease.
            try await Task.sleep(for: .seconds(2))
            let stalledID = try #require(try await db.scalar(
                "SELECT id FROM skipper.runners WHERE pid = \(runners[1].pid) AND heartbeat_at > now() - interval '10 seconds'"))
            let locker = Task {
                try await db.withClient(maxConnections: 1) { postgres in
                    try await postgres.withTransaction(logger: Logger(label: "test")) { connection in
                        try await connection.query("SELECT 1 FROM skipper.runners WHERE id = \(stalledID) FOR UPDATE", logger: Logger(label: "test"))
                        try await Task.sleep(for: .seconds(6))
                    }
                }
            }
            try await locker.value

            // 4. Restart PostgreSQL, mid-drain (else this test would test less than it says).
            let finishedBeforeRestart = try #require(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'").flatMap { Int($0) })
            #expect(finishedBeforeRestart < 703)
            try await cluster.stop()
            try await Task.sleep(for: .seconds(3))
            try await cluster.start()

            let done = try await eventually(timeout: .seconds(150), every: .milliseconds(500)) {
                (try? await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')")) == "703"
            }
            let states = try await db.scalar("SELECT string_agg(kind || ' ' || status || ' ' || n, ', ') FROM (SELECT kind, status, count(*) n FROM skipper.jobs GROUP BY 1, 2) s")
            #expect(done, "jobs: \(states ?? "?")\n\(runners.map(\.log).joined(separator: "\n---\n").suffix(20000))")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "703")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status <> 'COMPLETED'") == "0", "\(states ?? "?")")
            // The killed runner's executions ended when it died.
            try await db.query("UPDATE executions SET ended_at = \(killedAt)::timestamptz WHERE pid = \(killed) AND ended_at IS NULL")
            // A superseded execution may still be recording its end after a restart: give it a moment.
            _ = try await eventually(timeout: .seconds(30)) { try await db.scalar("SELECT count(*) FROM executions WHERE ended_at IS NULL") == "0" }
            let unended = try await db.query("SELECT job_id, lease, pid, started_at::text FROM executions WHERE ended_at IS NULL")
            // The unended executions' runners' logs, what failed to end (a statement that never answered?) in view.
            let pids = unended.compactMap { $0[2] }
            let lines = runners.filter { pids.contains(String($0.pid)) }.flatMap { $0.stderr.split(separator: "\n") }
                .filter { !$0.contains("Connection refused") && !$0.contains("shutting down") }.suffix(300)
            #expect(unended.isEmpty, "\(unended)\n\(lines.joined(separator: "\n"))")
            let overlapping = try await db.query(
                "SELECT a.job_id, a.lease, a.pid, a.started_at::text, a.ended_at::text, b.lease, b.pid, b.started_at::text FROM executions a JOIN executions b ON a.job_id = b.job_id AND a.lease < b.lease WHERE b.started_at < a.ended_at")
            #expect(try await db.scalar(PostgresQuery(unsafeSQL: Self.overlaps)) == "0", "\(overlapping)")
            // Every trace job ran to its end at least once; the faults made some run more than once, one after another.
            #expect(try await db.scalar("SELECT count(DISTINCT job_id) FROM executions") == "700")
            #expect(try await db.scalar("SELECT count(*) > 700 FROM executions") == "true")
            #expect(try await db.scalar("SELECT count(*) > 0 FROM executions WHERE pid = \(killed)") == "true")
            #expect(runners[1].stderr.contains("lease ran out"), "\(runners[1].stderr.suffix(5000))")
            // Each settlement published exactly once, whatever happened to its attempts.
            #expect(try await db.scalar("SELECT string_agg(n::text, ',') FROM (SELECT count(*) n FROM publishes GROUP BY job_id) p") == "1,1,1")
            #expect(try await db.scalar("SELECT count(*) FROM settlement_staging") == "0")
        }
    }

    /// A runner whose database is gone stops promptly on SIGTERM: it waited for a connection for grace + 15 s
    /// before, and its jobs ran on through the grace although its lease had run out (the lease was no longer
    /// watched once shutdown began). It says which jobs it could not record; they stay RUNNING under its lease, and once PostgreSQL is
    /// back another runner rescues and finishes them: nothing is lost.
    @Test func aRunnerWhoseDatabaseIsGoneStopsPromptlyAndLosesNothing() async throws {
        try await PrivateCluster.with { cluster in
            let db = TestDatabase(config: cluster.config)
            try await db.query("INSERT INTO skipper.jobs (kind, args) SELECT 'sleep', '{\"ms\": 60000}' FROM generate_series(1, 4)")
            // A long grace: the jobs stop anyway when the runner's lease runs out (2 s without a heartbeat).
            // Free slots too, so a claim is waiting for a connection when the runner is asked to stop.
            let env = ["RESCUE_AFTER": "3s", "WORKERS": "8", "SHUTDOWN_GRACE": "30s"]
            let orphaned = try ChildProcess.skipper("skipper-test-runner", url: cluster.url, environment: env)
            defer { orphaned.killNow() }
            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'RUNNING'") == "4"
            }, "\(orphaned.log)")
            try await cluster.stop()
            try await Task.sleep(for: .seconds(1))
            let asked = ContinuousClock.now
            orphaned.signal(SIGTERM)
            let status = await orphaned.waitForExit(timeout: .seconds(60))
            let took = ContinuousClock.now - asked
            #expect(status == 0, "\(orphaned.log.suffix(5000))")
            #expect(took < .seconds(25), "stopped after \(took)\n\(orphaned.log.suffix(5000))")
            #expect(orphaned.stderr.contains("could not record finished jobs"), "\(orphaned.log.suffix(5000))")

            try await cluster.start()
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'RUNNING'") == "4")
            try await db.query("UPDATE skipper.jobs SET args = '{\"ms\": 10}'")
            let rescuer = try ChildProcess.skipper("skipper-test-runner", url: cluster.url, environment: env)
            defer { rescuer.killNow() }
            #expect(try await eventually(timeout: .seconds(60)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'") == "4"
            }, "\(rescuer.log.suffix(5000))")
        }
    }

    /// A runner that never got started (its database unreachable from the first moment, or without Skipper's
    /// schema) stops on the first SIGINT or SIGTERM: it waited for a connection, or for the start that never came,
    /// until a second signal ended it the hard way.
    @Test(arguments: [SIGINT, SIGTERM])
    func aRunnerThatNeverStartedStopsOnTheFirstSignal(signal: Int32) async throws {
        // A port nobody listens on: every connection is refused, and the pool keeps trying.
        let unreachable = "postgres://skipper@127.0.0.1:9/skipper"
        let runner = try ChildProcess.skipper("skipper-test-runner", url: unreachable, environment: ["LOG_LEVEL": "info"])
        defer { runner.killNow() }
        try await Task.sleep(for: .seconds(2))
        #expect(runner.isRunning, "\(runner.log.suffix(3000))")
        let asked = ContinuousClock.now
        runner.signal(signal)
        let status = await runner.waitForExit(timeout: .seconds(20))
        let took = ContinuousClock.now - asked
        #expect(status == 0, "\(runner.log.suffix(3000))")
        #expect(took < .seconds(5), "stopped after \(took)\n\(runner.log.suffix(3000))")
        #expect(!runner.stderr.contains("second signal"), "\(runner.log.suffix(3000))")
    }

    /// A job stopped while its handlers held every connection of the runner's pool: each statement's cancel
    /// (`pg_cancel_backend`) waited for a connection of that same pool, which none would give back, so the runner
    /// locked up for good (its heartbeat kept its jobs from rescue). Cancels go through the runner's control
    /// connections now: the job ends CANCELLED within seconds and the runner claims again.
    @Test func cancellingAJobThatHoldsEveryPooledConnectionDoesNotLockUpTheRunner() async throws {
        try await withTestDatabase { db in
            // A pool of WORKERS + 6 = 8 connections, and a job holding 12 (4 wait for one).
            let runner = try ChildProcess.skipper("skipper-test-runner", url: db.url, environment: ["WORKERS": "2", "DB_POOL_SIZE": "1"])
            defer { runner.killNow() }
            let id = try #require(try await db.scalar(
                "INSERT INTO skipper.jobs (kind, args) VALUES ('hold', '{\"connections\": 12, \"seconds\": 120}') RETURNING id"))
            let sleeping: PostgresQuery = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep($1)' AND state = 'active'"
            #expect(try await eventually(timeout: .seconds(30)) { Int(try await db.scalar(sleeping) ?? "0") ?? 0 >= 5 }, "\(runner.log.suffix(3000))")
            try await Task.sleep(for: .milliseconds(500))
            try await db.query("UPDATE skipper.jobs SET cancel_requested_at = now() WHERE id = \(Int64(id)!)")
            try await db.query("SELECT pg_notify('skipper_cancel', \(id))")
            #expect(try await eventually(timeout: .seconds(10)) {
                try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(Int64(id)!)") == "CANCELLED"
            }, "\(runner.log.suffix(3000))")
            #expect(try await eventually(timeout: .seconds(10)) { try await db.scalar(sleeping) == "0" })
            // And the runner still runs jobs.
            let next = try #require(try await db.scalar("INSERT INTO skipper.jobs (kind) VALUES ('noop') RETURNING id"))
            try await db.query("SELECT pg_notify('skipper_jobs', 'default')")
            #expect(try await eventually(timeout: .seconds(10)) {
                try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(Int64(next)!)") == "COMPLETED"
            }, "\(runner.log.suffix(3000))")
        }
    }

    /// A runner asked to stop while a lock blocks its last writes (skipper.jobs_active locked by another session)
    /// gave up on them and then never exited, not even on a second signal. It exits within its shutdown limit
    /// (SHUTDOWN_GRACE + 30 s) now, and its jobs are rescued once the lock goes.
    @Test func aRunnerWhoseLastWritesAreBlockedStillExits() async throws {
        try await withTestDatabase { db in
            let runner = try ChildProcess.skipper(
                "skipper-runner", url: db.url, environment: ["RESCUE_AFTER": "10s", "SHUTDOWN_GRACE": "1s"])
            defer { runner.killNow() }
            try await db.query("INSERT INTO skipper.jobs (kind, args) SELECT 'sleep', '{\"ms\": 3000}' FROM generate_series(1, 2)")
            try await db.query("SELECT pg_notify('skipper_jobs', 'default')")
            #expect(try await eventually(timeout: .seconds(20)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'RUNNING'") == "2"
            }, "\(runner.log.suffix(3000))")
            let locker = Task {
                try await db.withClient(maxConnections: 1) { postgres in
                    try await postgres.withTransaction(logger: Logger(label: "test")) { connection in
                        try await connection.query("LOCK skipper.jobs_active IN ACCESS EXCLUSIVE MODE", logger: Logger(label: "test"))
                        try await Task.sleep(for: .seconds(60))
                    }
                }
            }
            defer { locker.cancel() }
            try await Task.sleep(for: .seconds(1))
            let asked = ContinuousClock.now
            runner.signal(SIGTERM)
            let status = await runner.waitForExit(timeout: .seconds(50))
            #expect(status != nil, "still running \(ContinuousClock.now - asked) after SIGTERM\n\(runner.log.suffix(3000))")
            #expect(ContinuousClock.now - asked < .seconds(45))
        }
    }
}
