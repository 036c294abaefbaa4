import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Skipper
import Testing
import TestSupport

@testable import API

/// The settlement job end to end: the API, a real runner process, and the ledger in PostgreSQL.
@Suite struct SettlementTests {
    /// The ledger as `make seed` fills it: mostly PAID, some FAILED and REFUNDED, over `days` days of January 2025.
    static func seed(_ db: TestDatabase, rows: Int, merchants: Int, days: Int = 31) async throws {
        _ = try await db.query(
            """
            INSERT INTO transactions (merchant_id, amount_cents, fee_cents, status, paid_at, created_at)
            SELECT m, a, a * 29 / 1000 + 30, s, CASE WHEN s IN ('PAID', 'REFUNDED') THEN at END, at
            FROM (SELECT 1 + (i * 7919) % \(Int64(merchants)) AS m, 100 + (i * 104729) % 99900 AS a,
                         CASE WHEN i % 20 = 0 THEN 'FAILED' WHEN i % 20 = 1 THEN 'REFUNDED' ELSE 'PAID' END AS s,
                         timestamptz '2025-01-01 00:00:00+00' + ((i * 65537) % (\(Int64(days)) * 86400)) * interval '1 second' AS at
                  FROM generate_series(1, \(Int64(rows))) i) t
            """)
        _ = try await db.query("ANALYZE transactions")
    }

    /// Rows of `settlements` that differ from a direct aggregate of the ledger over January 2025, either way.
    static func differences(_ db: TestDatabase) async throws -> String? {
        try await db.scalar(
            """
            WITH expected AS (
              SELECT merchant_id, (paid_at AT TIME ZONE 'UTC')::date AS date, sum(amount_cents) AS gross,
                     sum(fee_cents) AS fee, sum(amount_cents) - sum(fee_cents) AS net, count(*) AS n
              FROM transactions WHERE status = 'PAID' AND paid_at >= '2025-01-01Z' AND paid_at < '2025-02-01Z'
              GROUP BY 1, 2),
            actual AS (SELECT merchant_id, date, gross_cents, fee_cents, net_cents, txn_count FROM settlements)
            SELECT ((SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM actual) a)
                  + (SELECT count(*) FROM (SELECT * FROM actual EXCEPT SELECT * FROM expected) b))::text
            """)
    }

    static func snapshot(_ db: TestDatabase) async throws -> String? {
        try await db.scalar(
            """
            SELECT coalesce(string_agg(concat_ws(',', merchant_id, date, gross_cents, fee_cents, net_cents, txn_count, unique_run_id),
                                       ';' ORDER BY merchant_id, date), '')
            FROM settlements
            """)
    }

    static func waitForStatus(_ db: TestDatabase, _ id: Int64, _ status: String, timeout: Duration = .seconds(60)) async throws -> Bool {
        try await eventually(timeout: timeout, every: .milliseconds(100)) {
            try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(id)") == status
        }
    }

    @Test func settlementEqualsADirectAggregateWithItsCSVAndRepeatsIdentically() async throws {
        try await withAPI(kinds: ["settlement", "noop"]) { db, client in
            try await Self.seed(db, rows: 60_000, merchants: 40)
            // Validation names the field, with the code POST /jobs gives the same arguments: one check, one code.
            for (body, field) in [
                (#"{"from": "2025-02-01", "to": "2025-01-01"}"#, "to"),
                (#"{"from": "2025-13-01", "to": "2025-12-31"}"#, "from"),
                (#"{"from": "2025-1-011", "to": "2025-12-31"}"#, "from"),
                (#"{"from": "2025-01-01", "to": "2026-06-01"}"#, "to"),
                (#"{"from": "2025-01-01"}"#, "to"),
                (#"{"from": 20250101, "to": "2025-01-31"}"#, "from"),
            ] {
                let response = try await client.send(.post, "/jobs/settlement", json: body)
                #expect(response.status == .unprocessableContent, "\(body): \(response.text)")
                #expect(response.string("message")?.hasPrefix(field + ":") == true, "\(body): \(response.text)")
                #expect(response.errorCode == "INVALID_ARGS", "\(body): \(response.text)")
                let viaJobs = try await client.send(.post, "/jobs", json: #"{"kind": "settlement", "args": \#(body)}"#)
                #expect(viaJobs.errorCode == "INVALID_ARGS" && viaJobs.string("message")?.hasPrefix("args." + field + ":") == true, "\(viaJobs.text)")
            }
            let submitted = try await client.send(.post, "/jobs/settlement", json: #"{"from": "2025-01-01", "to": "2025-01-31"}"#)
            #expect(submitted.status == .accepted)
            #expect(submitted.string("status") == "QUEUED")
            let id = try #require(submitted.int("job_id"))
            // No runner yet: the file is not ready.
            let early = try await client.send(.get, "/downloads/\(id).csv")
            #expect(early.status == .conflict)
            #expect(early.errorCode == "NOT_READY")

            // Staging rows a cancelled run left behind (its runner stopped before it could clear them; a cancelled
            // job never runs again to do it), and rows of a run that still holds its job.
            let cancelled = try #require(try await db.scalar(
                "INSERT INTO skipper.jobs (kind, status, attempt, lease, started_at, finished_at) VALUES ('settlement', 'CANCELLED', 1, 77, now(), now()) RETURNING id"))
            let live = try #require(try await db.scalar(
                "INSERT INTO skipper.jobs (kind, status, attempt, lease, started_at, runner_id) VALUES ('settlement', 'RUNNING', 1, 78, now(), 'elsewhere') RETURNING id"))
            try await db.query(
                """
                INSERT INTO settlement_staging (run_id, merchant_id, date, gross_cents, fee_cents, txn_count)
                SELECT run, 1, '2024-01-01', 1, 1, 1 FROM unnest(ARRAY[\(cancelled) || '-77', \(live) || '-78', 'by-hand']) run, generate_series(1, 3)
                """)
            let runner = try ChildProcess.runner(url: db.url, environment: ["BATCH_SIZE": "5000"])
            defer { runner.killNow() }
            #expect(try await Self.waitForStatus(db, id, "COMPLETED", timeout: .seconds(15)), "\(runner.log)")
            #expect(try await Self.differences(db) == "0")
            #expect(try await db.scalar("SELECT string_agg(DISTINCT run_id, ',' ORDER BY run_id) FROM settlement_staging") == "\(live)-78,by-hand")
            try await db.query("DELETE FROM settlement_staging")
            let job = try await client.send(.get, "/jobs/\(id)")
            #expect(job.json["progress"] as? Double == 100)
            #expect(job.string("download_url") == "/downloads/\(id).csv")
            let paid = try await db.scalar("SELECT count(*) FROM transactions WHERE status = 'PAID'")
            #expect(job.int("total").map(String.init) == paid)
            #expect(job.int("processed").map(String.init) == paid)

            // The CSV is the rows of the run, header first, ordered by date then merchant.
            let csv = try await client.send(.get, "/downloads/\(id).csv")
            #expect(csv.status == .ok)
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(csv.headers[.contentDisposition]?.contains("settlement-\(id).csv") == true)
            let expectedCSV = try await db.scalar(
                """
                SELECT 'merchant_id,date,gross_cents,fee_cents,net_cents,txn_count' || E'\\n'
                    || string_agg(concat_ws(',', merchant_id, to_char(date, 'YYYY-MM-DD'), gross_cents, fee_cents, net_cents, txn_count)
                                  || E'\\n', '' ORDER BY date, merchant_id)
                FROM settlements
                """)
            #expect(csv.text == expectedCSV)
            #expect(csv.text.split(separator: "\n").count == 1 + (Int(try await db.scalar("SELECT count(*) FROM settlements") ?? "") ?? -1))

            // A repeated run writes the same figures.
            let before = try await db.scalar("SELECT string_agg(concat_ws(',', merchant_id, date, gross_cents, fee_cents, net_cents, txn_count), ';' ORDER BY merchant_id, date) FROM settlements")
            let again = try #require(try await client.send(.post, "/jobs/settlement", json: #"{"from": "2025-01-01", "to": "2025-01-31"}"#).int("job_id"))
            #expect(try await Self.waitForStatus(db, again, "COMPLETED"))
            #expect(try await db.scalar("SELECT string_agg(concat_ws(',', merchant_id, date, gross_cents, fee_cents, net_cents, txn_count), ';' ORDER BY merchant_id, date) FROM settlements") == before)
            #expect(try await db.scalar("SELECT count(DISTINCT unique_run_id) FROM settlements") == "1")
            #expect(try await db.scalar("SELECT count(*) FROM settlement_staging") == "0")

            // Jobs without a file, and ids that are not ids.
            let noop = try #require(try await client.send(.post, "/jobs", json: #"{"kind": "noop"}"#).int("job_id"))
            #expect(try await Self.waitForStatus(db, noop, "COMPLETED"))
            #expect(try await client.send(.get, "/downloads/\(noop).csv").status == .notFound)
            #expect(try await client.send(.get, "/downloads/987654.csv").status == .notFound)
            #expect(try await client.send(.get, "/downloads/abc.csv").status == .badRequest)
            await runner.stop()
        }
    }

    @Test func aCancelHalfwayLeavesSettlementsExactlyAsTheyWere() async throws {
        try await withAPI(kinds: ["settlement"]) { db, client in
            try await Self.seed(db, rows: 300_000, merchants: 100)
            // Figures from an earlier run, and a row of the range that a finished run would replace.
            _ = try await db.query(
                "INSERT INTO settlements (merchant_id, date, gross_cents, fee_cents, net_cents, txn_count, unique_run_id) VALUES (1, '2025-01-15', 5, 1, 4, 1, 'earlier')")
            let before = try await Self.snapshot(db)
            // Progress lands every 50 ms and the run takes 3,000 slices of 100, so "halfway" is read while it is.
            let runner = try ChildProcess.runner(url: db.url, environment: ["PROGRESS_INTERVAL": "50ms"])
            defer { runner.killNow() }
            let id = try #require(try await client.send(
                .post, "/jobs/settlement", json: #"{"from": "2025-01-01", "to": "2025-01-31", "batch_size": 100, "parallelism": 1}"#
            ).int("job_id"))
            let halfway = try await eventually(timeout: .seconds(60), every: .milliseconds(20)) {
                let percent = try await db.scalar("SELECT CASE WHEN total > 0 THEN 100 * processed / total ELSE 0 END FROM skipper.jobs WHERE id = \(id)")
                return (Int(percent ?? "") ?? 0) >= 40
            }
            #expect(halfway)
            let percent = try await db.scalar("SELECT 100 * processed / total FROM skipper.jobs WHERE id = \(id)")
            #expect((Int(percent ?? "") ?? 100) < 90, "cancelled while the run was under way, not at its end")
            #expect(try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(id)") == "RUNNING")
            let cancelled = try await client.send(.post, "/jobs/\(id)/cancel")
            #expect(cancelled.status == .accepted)
            #expect(try await Self.waitForStatus(db, id, "CANCELLED", timeout: .seconds(1)), "stopped within a second")
            #expect(try await Self.snapshot(db) == before)
            let cleared = try await eventually { try await db.scalar("SELECT count(*) FROM settlement_staging") == "0" }
            if !cleared {
                let left = try await db.scalar("SELECT string_agg(run_id || ': ' || n, ', ') FROM (SELECT run_id, count(*) n FROM settlement_staging GROUP BY run_id) s")
                Issue.record("staging rows left: \(left ?? "?"); job: \(try await db.scalar("SELECT status || ' attempt ' || attempt FROM skipper.jobs WHERE id = \(id)") ?? "?")\n\(runner.log)")
            }
            #expect(try await client.send(.get, "/downloads/\(id).csv").status == .notFound)
            await runner.stop()
        }
    }

    @Test func aRunnerKilledMidSettlementIsRescuedAndTheResultIsRight() async throws {
        try await withAPI(kinds: ["settlement"]) { db, client in
            try await Self.seed(db, rows: 200_000, merchants: 100)
            let env = ["RESCUE_AFTER": "2s", "POLL_INTERVAL": "200ms"]
            let first = try ChildProcess.runner(url: db.url, environment: env)
            let id = try #require(try await client.send(
                .post, "/jobs/settlement", json: #"{"from": "2025-01-01", "to": "2025-01-31", "batch_size": 100, "parallelism": 1}"#
            ).int("job_id"))
            #expect(try await eventually(timeout: .seconds(30), every: .milliseconds(20)) {
                (Int(try await db.scalar("SELECT processed FROM skipper.jobs WHERE id = \(id)") ?? "") ?? 0) > 0
            })
            first.signal(SIGKILL)
            _ = await first.waitForExit(timeout: .seconds(5))
            let second = try ChildProcess.runner(url: db.url, environment: env)
            defer { second.killNow() }
            #expect(try await Self.waitForStatus(db, id, "COMPLETED", timeout: .seconds(60)), "\(second.log)")
            #expect(try await db.scalar("SELECT attempt FROM skipper.jobs WHERE id = \(id)") == "2")
            #expect(try await Self.differences(db) == "0")
            #expect(try await db.scalar("SELECT count(*) FROM settlement_staging") == "0")
            await second.stop()
        }
    }
}
