import Foundation
import Skipper

/// A PostgreSQL cluster of one test's own, for tests that stop and start the server; migrated, removed afterwards.
public struct PrivateCluster: Sendable {
    public let dir: URL
    public let config: DatabaseConfig
    public var url: String { self.config.url(redacted: false) }

    /// Starts a new cluster with scripts/db.sh in a temporary folder, migrates it, runs `body`, and removes it.
    public static func with<T: Sendable>(_ body: (PrivateCluster) async throws -> T) async throws -> T {
        let dir = URL(fileURLWithPath: "/tmp/skipper-cluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let started = try await Self.db("start", dir: dir)
        guard started.status == 0, let range = started.stdout.range(of: "DATABASE_URL='") else {
            throw TestSetupError("could not start a private cluster: \(started.stderr)")
        }
        let url = String(started.stdout[range.upperBound...].prefix { $0 != "'" })
        let cluster = PrivateCluster(dir: dir, config: try DatabaseConfig(url: url))
        do {
            for folder in [Paths.migrations, Paths.shopMigrations] {
                let migrated = try await runProcess(Executables.path("skipper-migrate"), ["up", "--path", folder.path, "--database-url", url])
                guard migrated.status == 0 else { throw TestSetupError("migrate failed: \(migrated.stderr)") }
            }
            let result = try await body(cluster)
            try await cluster.remove()
            return result
        } catch {
            try? await cluster.remove()
            throw error
        }
    }

    /// Stops the server (fast shutdown: connections are cut).
    public func stop() async throws {
        let result = try await Self.db("stop", dir: self.dir)
        guard result.status == 0 else { throw TestSetupError("stop failed: \(result.stderr)") }
    }

    /// Starts it again on the same port.
    public func start() async throws {
        let result = try await Self.db("start", dir: self.dir)
        guard result.status == 0, result.stdout.contains(":\(self.config.port)/") else {
            throw TestSetupError("restart failed or moved port: \(result.stdout) \(result.stderr)")
        }
    }

    private func remove() async throws {
        _ = try await Self.db("stop", dir: self.dir)
        try? FileManager.default.removeItem(at: self.dir)
    }

    private static func db(_ command: String, dir: URL) async throws -> ProcessResult {
        var env = ProcessInfo.processInfo.environment
        env["SKIPPER_DB_DIR"] = dir.path
        return try await runProcess(Paths.root.appendingPathComponent("scripts/db.sh").path, [command], environment: env)
    }
}
