import Foundation
import Testing
import TestSupport

@Suite struct RunnerStartupTests {
    @Test func runnerRefusesAnUnmigratedDatabase() async throws {
        try await withTestDatabase(migrated: false) { db in
            var env = ProcessInfo.processInfo.environment
            env["DATABASE_URL"] = db.url
            let result = try await runProcess(Executables.path("skipper-runner"), [], environment: env)
            #expect(result.status != 0)
            #expect((result.stdout + result.stderr).contains("run skipper-migrate up"))
        }
    }

    /// A `LISTEN_DATABASE_URL` that never connects (a closed port here) is said at warning level within seconds,
    /// and the runner works on by polling.
    @Test func aListenConnectionThatNeverComesIsReported() async throws {
        try await withTestDatabase { db in
            let runner = try ChildProcess.runner(url: db.url, environment: [
                "DB_POOLER": "pgbouncer", "LISTEN_DATABASE_URL": "postgres://postgres@127.0.0.1:1/skipper", "POLL_INTERVAL": "200ms",
            ])
            defer { runner.killNow() }
            try await db.query("INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, 20)")
            #expect(try await eventually(timeout: .seconds(20)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'") == "20"
            }, "\(runner.log)")
            #expect(try await eventually(timeout: .seconds(20)) {
                runner.stderr.contains("warning") && runner.stderr.contains("no connection to LISTEN on yet")
            }, "\(runner.log)")
        }
    }
}
