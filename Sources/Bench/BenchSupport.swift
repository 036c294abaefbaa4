import Foundation
import Logging
import PostgresNIO
import Skipper

/// The bench's own database, made anew each run and migrated with skipper-migrate.
enum BenchDatabase {
    static func recreate(_ config: DatabaseConfig, from base: DatabaseConfig, logger: Logger) async throws {
        let admin = PostgresClient(configuration: base.clientConfiguration(maxConnections: 1, applicationName: "skipper-bench"), backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            defer { group.cancelAll() }
            try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(config.database) WITH (FORCE)"), logger: logger)
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(config.database)"), logger: logger)
        }
        let migrate = Process()
        migrate.executableURL = Runner.binary("skipper-migrate")
        migrate.arguments = ["up", "--path", "migrations", "--database-url", config.url(redacted: false)]
        migrate.standardOutput = FileHandle.nullDevice
        try migrate.run()
        migrate.waitUntilExit()
        guard migrate.terminationStatus == 0 else { throw BenchError("skipper-migrate up failed") }
    }
}

/// A skipper-runner process built alongside this benchmark.
final class Runner: @unchecked Sendable {
    // @unchecked: `process` is set in init and only read afterwards.
    private let process = Process()

    static func binary(_ name: String) -> URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name)
    }

    init(url: String, environment: [String: String]) throws {
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = url
        env["LOG_LEVEL"] = "warning"
        for (key, value) in environment { env[key] = value }
        self.process.executableURL = Self.binary("skipper-runner")
        self.process.environment = env
        self.process.standardInput = FileHandle.nullDevice
        try self.process.run()
    }

    /// Starts `count` runners, runs `body`, and stops them whatever happens, so a failed bench leaves no process behind.
    static func with(_ count: Int, url: String, environment: [String: String], _ body: ([Runner]) async throws -> Void) async throws {
        let runners = try (0..<count).map { _ in try Runner(url: url, environment: environment) }
        do {
            try await body(runners)
        } catch {
            for runner in runners { await runner.stop() }
            throw error
        }
        for runner in runners { await runner.stop() }
    }

    /// The process's peak resident memory so far (VmHWM), in MiB.
    var peakRSSMiB: Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(self.process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = line.split(separator: " ").compactMap({ Double($0) }).first
        else { return nil }
        return kib / 1024
    }

    func stop() async {
        guard self.process.isRunning else { return }
        kill(self.process.processIdentifier, SIGTERM)
        for _ in 0..<500 where self.process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }
}
