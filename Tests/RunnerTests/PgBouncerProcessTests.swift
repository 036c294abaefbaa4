import Foundation
import PostgresNIO
import Testing
import TestSupport

/// The API and runners through a real PgBouncer in transaction pooling mode (DB_POOLER=pgbouncer), where
/// consecutive transactions of one client connection run on different server sessions: submit, claim, complete,
/// progress, retries, rescue of a killed runner, cancel of a running job, graceful shutdown, and the settlement with
/// its CSV. One runner LISTENs over a direct connection (LISTEN_DATABASE_URL), the other polls.
@Suite struct PgBouncerProcessTests {
    @Test func theAPIAndRunnersWorkThroughPgBouncerInTransactionMode() async throws {
        try await withTestDatabase { db in
            // Few server connections for many clients: the sessions are shared as much as they can be.
            let bouncer = try await PgBouncer.start(in: db.config, poolSize: 8)
            let pooled = bouncer.config(for: db.config).url(redacted: false)
            try await db.query(
                """
                INSERT INTO transactions (merchant_id, amount_cents, fee_cents, status, paid_at)
                SELECT 1 + i % 20, 1000 + i % 7, 30, 'PAID', '2025-01-01'::timestamptz + (i % 96) * interval '1 hour'
                FROM generate_series(1, 20000) i
                """)
            // A lease with room for a slow machine: heartbeats wait in PgBouncer's queue with everything else.
            let common = ["DB_POOLER": "pgbouncer", "RESCUE_AFTER": "10s", "WORKERS": "8", "POLL_INTERVAL": "200ms"]
            // The listening runner would find everything within 30 s without its notifications.
            let listening = try ChildProcess.runner(
                url: pooled, environment: common.merging(["LISTEN_DATABASE_URL": db.url, "POLL_INTERVAL": "30s", "CANCEL_SWEEP": "30s"]) { $1 })
            defer { listening.killNow() }
            let polling = try ChildProcess.runner(url: pooled, environment: common)
            defer { polling.killNow() }
            let (api, base) = try await startAPI(url: pooled, environment: ["DB_POOLER": "pgbouncer", "DB_TIMEOUT": "10s"])
            defer { api.killNow() }
            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) FROM skipper.runners") == "2"
            }, "\(listening.log)\n\(polling.log)\n\(bouncer.log)")
            // Each says how it reaches PostgreSQL.
            #expect(listening.stderr.contains("through a transaction-pooling PgBouncer") && listening.stderr.contains("LISTEN over LISTEN_DATABASE_URL"), "\(listening.log)")
            #expect(polling.stderr.contains("polling every 200ms"), "\(polling.log)")
            #expect(api.stderr.contains("through a transaction-pooling PgBouncer"), "\(api.log)")
            // And it does LISTEN, on its direct connection.
            #expect(try await eventually(timeout: .seconds(10)) {
                try await db.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'skipper-runner-listen' AND query LIKE 'LISTEN%'") != "0"
            })

            // Submissions from 16 clients at once through the API (its grouped INSERT, unprepared here), and 2,000
            // more inserted with SQL: every job completes exactly once, on its first attempt.
            try await withThrowingTaskGroup(of: Int.self) { group in
                for client in 0..<16 {
                    group.addTask {
                        var accepted = 0
                        for n in 0..<25 {
                            // A 503 (the database slower than DB_TIMEOUT on a loaded machine) is tried again.
                            for _ in 0..<3 {
                                let response = try await http("POST", "\(base)/jobs", #"{"kind": "noop", "args": {"n": \#(client * 100 + n)}}"#)
                                if response.status == 202 { accepted += 1 }
                                if response.status != 503 { break }
                            }
                        }
                        return accepted
                    }
                }
                var accepted = 0
                for try await count in group { accepted += count }
                #expect(accepted == 400)
            }
            try await db.query("INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, 2000)")
            #expect(try await eventually(timeout: .seconds(60), every: .milliseconds(200)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE kind = 'noop' AND status = 'COMPLETED'") == "2400"
            }, "\(listening.log)\n\(polling.log)")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE kind = 'noop' AND (attempt <> 1 OR errors <> '[]')") == "0")
            #expect(try await db.scalar("SELECT count(DISTINCT runner_id) FROM skipper.jobs WHERE kind = 'noop'") == "2")

            // Retries: a job failing on purpose is retried until its attempts run out.
            let failing = try #require(number("job_id", in: try await http("POST", "\(base)/jobs", #"{"kind": "fail", "max_attempts": 2}"#).body))
            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT status || ' ' || attempt FROM skipper.jobs WHERE id = \(failing)") == "FAILED 2"
            })

            // Progress is written while a job runs; a cancel of a running job ends it within 2 s (no cancel by backend
            // pid here, which would name whichever session a statement ran on).
            let sleeper = try #require(number("job_id", in: try await http("POST", "\(base)/jobs", #"{"kind": "sleep", "args": {"ms": 60000}}"#).body))
            #expect(try await eventually(timeout: .seconds(10)) {
                (Int(try await db.scalar("SELECT processed FROM skipper.jobs WHERE id = \(sleeper)") ?? "") ?? 0) > 0
            })
            #expect(try await http("POST", "\(base)/jobs/\(sleeper)/cancel").status == 202)
            #expect(try await eventually(timeout: .seconds(5), every: .milliseconds(20)) {
                try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(sleeper)") == "CANCELLED"
            })
            let cancelMs = try #require(Double(try await db.scalar(
                "SELECT round(extract(epoch FROM finished_at - cancel_requested_at) * 1000) FROM skipper.jobs WHERE id = \(sleeper)") ?? ""))
            #expect(cancelMs < 2000, "cancel took \(cancelMs) ms")

            // The settlement of January, through the API, with its CSV.
            let settlement = try #require(number("job_id", in: try await http(
                "POST", "\(base)/jobs/settlement", #"{"from": "2025-01-01", "to": "2025-01-31", "batch_size": 1000}"#).body))
            #expect(try await eventually(timeout: .seconds(60)) {
                try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(settlement)") == "COMPLETED"
            }, "\(listening.log)\n\(polling.log)")
            #expect(try await db.scalar(
                """
                SELECT (SELECT sum(net_cents) FROM settlements) = (SELECT sum(amount_cents - fee_cents) FROM transactions)
                   AND (SELECT sum(txn_count) FROM settlements) = 20000
                """) == "true")
            let csv = try await http("GET", "\(base)/downloads/\(settlement).csv")
            #expect(csv.status == 200 && csv.body.hasPrefix("merchant_id,date,"), "\(csv.body.prefix(200))")
            #expect(csv.body.split(separator: "\n").count == 1 + 20 * 4, "one line per merchant and day")

            // kill -9 of a runner holding jobs: the other rescues and finishes them; then SIGTERM stops it cleanly.
            try await db.query(#"INSERT INTO skipper.jobs (kind, args) SELECT 'sleep', '{"ms": 8000}' FROM generate_series(1, 12)"#)
            #expect(try await eventually(timeout: .seconds(10)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE kind = 'sleep' AND status = 'RUNNING' AND runner_id LIKE '%-' || \(String(polling.pid)) || '-%'") != "0"
            })
            polling.signal(SIGKILL)
            _ = await polling.waitForExit(timeout: .seconds(5))
            let orphaned = try #require(Int(try await db.scalar(
                "SELECT count(*) FROM skipper.jobs WHERE args->>'ms' = '8000' AND status = 'RUNNING' AND runner_id LIKE '%-' || \(String(polling.pid)) || '-%'") ?? ""))
            #expect(orphaned > 0)
            #expect(try await eventually(timeout: .seconds(90), every: .milliseconds(200)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE args->>'ms' = '8000' AND status = 'COMPLETED'") == "12"
            }, "\(listening.log)")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE args->>'ms' = '8000' AND attempt = 2") == "\(orphaned)")
            listening.signal(SIGTERM)
            #expect(await listening.waitForExit(timeout: .seconds(20)) == 0, "\(listening.log)")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.runners WHERE id LIKE '%-' || \(String(listening.pid)) || '-%'") == "0")
            // No prepared statement went astray on the way (PostgreSQL's `prepared statement "…" does not exist` or
            // `already exists`, which a named statement behind a transaction pooler runs into).
            for process in [api, listening, polling] {
                #expect(!process.log.contains(#"prepared statement ""#), "\(process.log.suffix(3000))")
            }
        }
    }

    /// Server sessions terminated under pooled runners (8 a second for 20 s, as an operator's `pg_terminate_backend`
    /// or a PostgreSQL stopping does): a terminated session rolls its statement back, yet PgBouncer passes on the rows
    /// and the CommandComplete it had sent. A claim or finish that never committed once looked done there, and jobs
    /// ran twice at once. Now no execution of a job overlaps another, and every job completes.
    @Test func serverSessionsTerminatedUnderPooledRunnersNeverRunAJobTwiceAtOnce() async throws {
        try await withTestDatabase { db in
            try await db.query(PostgresQuery(unsafeSQL: FaultProcessTests.executions))
            let bouncer = try await PgBouncer.start(in: db.config, poolSize: 8)
            let pooled = bouncer.config(for: db.config).url(redacted: false)
            try await db.query(
                "INSERT INTO skipper.jobs (kind, args, max_attempts) SELECT 'trace', '{\"ms\": 20}', 100 FROM generate_series(1, 30000)")
            let env = ["DB_POOLER": "pgbouncer", "RESCUE_AFTER": "10s", "WORKERS": "20", "POLL_INTERVAL": "200ms", "CANCEL_SWEEP": "500ms"]
            let runners = try (0..<3).map { index in
                try ChildProcess.skipper(
                    "skipper-test-runner", url: pooled, environment: index == 0 ? env.merging(["LISTEN_DATABASE_URL": db.url]) { $1 } : env)
            }
            defer { for runner in runners { runner.killNow() } }
            #expect(try await eventually(timeout: .seconds(30)) { try await db.scalar("SELECT count(*) FROM skipper.runners") == "3" })
            var terminated = 0
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(20) {
                terminated += Int(try await db.scalar(
                    """
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid()
                      AND application_name LIKE 'skipper-test-runner%' AND application_name NOT LIKE '%listen%'
                    """) ?? "") ?? 0
                try await Task.sleep(for: .milliseconds(50))
            }
            let log = runners.map(\.log).joined(separator: "\n---\n").suffix(8000)
            #expect(terminated > 100, "\(terminated) sessions terminated")
            #expect(try await eventually(timeout: .seconds(180), every: .milliseconds(500)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'") == "30000"
            }, "\(log)")
            _ = try await eventually(timeout: .seconds(30)) { try await db.scalar("SELECT count(*) FROM executions WHERE ended_at IS NULL") == "0" }
            let overlapping = try await db.query(
                """
                SELECT a.job_id, a.lease, a.pid, a.started_at::text, a.ended_at::text, b.lease, b.pid, b.started_at::text
                FROM executions a JOIN executions b ON a.job_id = b.job_id AND a.lease < b.lease
                WHERE b.started_at < coalesce(a.ended_at, 'infinity') LIMIT 20
                """)
            let again = try await db.scalar("SELECT count(*) FROM (SELECT job_id FROM executions GROUP BY 1 HAVING count(*) > 1) j")
            print("pooled runners under terminated sessions: \(terminated) terminated, \(again ?? "?") jobs ran more than once, one after another")
            #expect(try await db.scalar(PostgresQuery(unsafeSQL: FaultProcessTests.overlaps)) == "0", "\(overlapping)\n\(log)")
        }
    }

    /// The API's sessions terminated under a stream of submissions: a submit batch whose INSERT never got an answer
    /// held its flight's slot for good, and with both slots held every POST /jobs answered 503 until a restart while
    /// /ready said 200. Now a batch is abandoned after 10 s and submissions are written again.
    @Test func anAPIWhoseSessionsAreTerminatedAcceptsSubmissionsAgain() async throws {
        try await withTestDatabase { db in
            try await db.query("INSERT INTO skipper.kinds (kind) VALUES ('noop')")
            let bouncer = try await PgBouncer.start(in: db.config, poolSize: 8)
            let pooled = bouncer.config(for: db.config).url(redacted: false)
            let (api, base) = try await startAPI(url: pooled, environment: ["DB_POOLER": "pgbouncer", "DB_TIMEOUT": "2s"])
            defer { api.killNow() }
            let submitters = (0..<4).map { _ in
                Task { () -> [Int: Int] in
                    var statuses: [Int: Int] = [:]
                    while !Task.isCancelled {
                        if let status = try? await http("POST", "\(base)/jobs", #"{"kind": "noop"}"#).status { statuses[status, default: 0] += 1 }
                    }
                    return statuses
                }
            }
            var terminated = 0
            for _ in 0..<150 {
                terminated += Int(try await db.scalar(
                    """
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'skipper-api'
                    """) ?? "") ?? 0
                try await Task.sleep(for: .milliseconds(100))
            }
            for submitter in submitters { submitter.cancel() }
            var statuses: [Int: Int] = [:]
            for submitter in submitters { statuses.merge(await submitter.value, uniquingKeysWith: +) }
            // Accepted, or 503 while the database did not answer: never a 500.
            #expect(Set(statuses.keys).isSubset(of: [202, 503]) && statuses[202, default: 0] > 0, "\(statuses)")
            #expect(terminated > 50, "\(terminated) sessions terminated")
            var last = ""
            let accepted = try await eventually(timeout: .seconds(30), every: .milliseconds(500)) {
                let response = try await http("POST", "\(base)/jobs", #"{"kind": "noop"}"#)
                last = "\(response.status) \(response.body)"
                return response.status == 202
            }
            #expect(accepted, "last answer: \(last)\n\(api.log.suffix(4000))")
        }
    }
}
