import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import PostgresNIO
import Skipper
import Testing
import TestSupport

/// The API and the runners log in as users granted skipper_api and skipper_runner (made by the migrations), never as
/// the owner: everything they do works with that, and what they must not do is refused.
@Suite struct LeastPrivilegeTests {
    /// A login user of `role` (users belong to the cluster: made once, reused by later runs).
    static func user(_ name: String, in role: String, db: TestDatabase) async throws -> DatabaseConfig {
        try await db.query(PostgresQuery(unsafeSQL: """
            DO $$ BEGIN
              IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(name)') THEN CREATE ROLE \(name) LOGIN; END IF;
              GRANT \(role) TO \(name);
            END $$
            """))
        var config = db.config
        config.username = name
        config.password = nil
        return config
    }

    @Test func theAPIAndRunnersWorkWithTheirRolesAndNoMore() async throws {
        try await withTestDatabase { db in
            let apiUser = try await Self.user("skipper_api_test", in: "skipper_api", db: db)
            let runnerUser = try await Self.user("skipper_runner_test", in: "skipper_runner", db: db)
            try await db.query(
                """
                INSERT INTO transactions (merchant_id, amount_cents, fee_cents, status, paid_at)
                SELECT 1 + i % 5, 1000, 30, 'PAID', '2025-01-01'::timestamptz + (i % 48) * interval '1 hour' FROM generate_series(1, 2000) i
                """)
            try await db.query("INSERT INTO products (name, category, stock, price_cents) VALUES ('beans', 'coffee', 10, 500)")
            let runner = try ChildProcess.runner(url: runnerUser.url(redacted: false), environment: ["RESCUE_AFTER": "3s"])
            defer { runner.killNow() }
            #expect(try await eventually { try await db.scalar("SELECT count(*) FROM skipper.runners") == "1" }, "\(runner.log)")
            let (api, base) = try await startAPI(url: apiUser.url(redacted: false))
            defer { api.killNow() }

            // Jobs: submitted, run, cancelled, retried.
            let noop = try await http("POST", "\(base)/jobs", #"{"kind": "noop"}"#)
            #expect(noop.status == 202, "\(noop.body)")
            let sleeper = try await http("POST", "\(base)/jobs", #"{"kind": "sleep", "args": {"ms": 60000}}"#)
            let sleeperID = try #require(number("job_id", in: sleeper.body))
            #expect(try await eventually { try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(sleeperID)") == "RUNNING" })
            #expect(try await http("POST", "\(base)/jobs/\(sleeperID)/cancel").status == 202)
            #expect(try await eventually { try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(sleeperID)") == "CANCELLED" })
            #expect(try await http("POST", "\(base)/jobs/\(sleeperID)/retry").status == 202)
            #expect(try await http("POST", "\(base)/jobs/\(sleeperID)/cancel").status == 202)
            // The settlement (staging, publish, CSV) and the shop (order, payment, report refresh).
            let settlement = try await http("POST", "\(base)/jobs/settlement", #"{"from": "2025-01-01", "to": "2025-01-02"}"#)
            let settlementID = try #require(number("job_id", in: settlement.body))
            let order = try await http("POST", "\(base)/orders", #"{"product_id": 1, "quantity": 2, "buyer_id": "ana"}"#)
            #expect(order.status == 200, "\(order.body)")
            let orderID = try #require((try? JSONSerialization.jsonObject(with: Data(order.body.utf8)) as? [String: Any])?["order_id"] as? String)
            #expect(try await http("POST", "\(base)/orders/\(orderID)/pay").status == 200)
            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'") == "3"
            }, "\(runner.log)")
            #expect(try await http("GET", "\(base)/downloads/\(settlementID).csv").body.hasPrefix("merchant_id,date,"))
            #expect(try await http("GET", "\(base)/reports/sales").body.contains(#""paid_orders":1"#))
            #expect(try await http("GET", "\(base)/metrics").status == 200)
            // The runner's maintenance keeps the partitions through the owner's functions.
            #expect(try await db.scalar("SELECT count(*) >= 3 FROM skipper.job_partitions") == "true")
            #expect(!runner.log.contains("permission denied"), "\(runner.log)")
            #expect(!api.log.contains("permission denied"), "\(api.log)")

            // What neither may do.
            for (user, statement) in [
                (apiUser, "DROP TABLE skipper.jobs"), (apiUser, "ALTER TABLE skipper.jobs ADD COLUMN x int"),
                (apiUser, "TRUNCATE skipper.jobs"), (apiUser, "DELETE FROM skipper.jobs"),
                (apiUser, "INSERT INTO settlements (merchant_id, date, gross_cents, fee_cents, net_cents, txn_count, unique_run_id) VALUES (1, '2025-01-01', 1, 1, 0, 1, 'x')"),
                (apiUser, "DELETE FROM settlements"), (apiUser, "UPDATE skipper.runners SET pid = 0"),
                (apiUser, "SELECT skipper.drop_job_partitions(interval '0')"),
                (runnerUser, "DROP TABLE skipper.jobs"), (runnerUser, "TRUNCATE skipper.jobs"),
                (runnerUser, "ALTER TABLE skipper.jobs_active VALIDATE CONSTRAINT jobs_active_unfinished"),
                (runnerUser, "UPDATE products SET stock = 0"), (runnerUser, "CREATE TABLE skipper.mine (x int)"),
                // Pruning is skipper.prune_finished's (finished jobs only); the runner deleted QUEUED jobs at will.
                (runnerUser, "DELETE FROM skipper.jobs_active WHERE status = 'QUEUED'"), (runnerUser, "DELETE FROM skipper.jobs"),
            ] {
                let refused: String? = try await withPostgresClient(user, maxConnections: 1) { client in
                    do {
                        try await client.query(PostgresQuery(unsafeSQL: statement), logger: Logger(label: "test"))
                        return nil
                    } catch let error as PSQLError {
                        return error.serverInfo?[.sqlState]
                    }
                }
                #expect(refused == "42501", "\(user.username): \(statement) gave \(refused ?? "success")")
            }
        }
    }


}
