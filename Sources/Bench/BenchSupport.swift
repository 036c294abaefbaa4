import Foundation
import Logging
import PostgresNIO
import Skipper
import TestSupport

/// The bench's own database, made anew each run and migrated with skipper-migrate.
enum BenchDatabase {
    static func recreate(_ config: DatabaseConfig, from base: DatabaseConfig, logger: Logger, migrate: Bool = true) async throws {
        let admin = PostgresClient(configuration: base.clientConfiguration(maxConnections: 1, applicationName: "skipper-bench"), backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            defer { group.cancelAll() }
            try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(config.database) WITH (FORCE)"), logger: logger)
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(config.database)"), logger: logger)
        }
        guard migrate else { return }
        // Skipper's migrations, then the demo shop's (the orders and settlement phases use its tables).
        for folder in ["migrations", "migrations/shop"] {
            let migrated = try await runProcess(
                Executables.path("skipper-migrate"), ["up", "--path", folder, "--database-url", config.url(redacted: false)])
            guard migrated.status == 0 else { throw BenchError("skipper-migrate up --path \(folder) failed: \(migrated.stderr)") }
        }
    }
}

/// Runner processes for one phase of the bench.
enum Runners {
    /// Starts `count` runners, runs `body`, and stops them whatever happens, so a failed bench leaves no process behind.
    static func with(
        _ count: Int, url: String, environment: [String: String], _ body: ([ChildProcess]) async throws -> Void
    ) async throws {
        var env = environment
        env["LOG_LEVEL"] = env["LOG_LEVEL"] ?? "warning"
        let runners = try (0..<count).map { _ in try ChildProcess.runner(url: url, environment: env) }
        do {
            try await body(runners)
        } catch {
            for runner in runners { await runner.stop() }
            throw error
        }
        for runner in runners { await runner.stop() }
    }
}
