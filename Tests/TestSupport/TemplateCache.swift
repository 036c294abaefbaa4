import Foundation
import PostgresNIO
import Skipper

/// The migrated template database, built once per version of migrations/ by running the real skipper-migrate.
actor TemplateCache {
    static let shared = TemplateCache()
    private var name: String?

    func migratedTemplate(_ server: TestServer) async throws -> String {
        if let name = self.name { return name }
        let name = "skipper_tpl_\(try Self.migrationsHash())"
        try await TestServer.withConnection(to: server.admin) { connection in
            // Test processes may build it at once: the first holds the lock, the others find it done.
            // The lock is a session lock: closing the connection releases it.
            _ = try await connection.query("SELECT pg_advisory_lock(7357)", logger: server.logger)
            let exists = try await TestServer.rows(
                of: "SELECT 1 FROM pg_database WHERE datname = \(name)", on: connection)
            guard exists.isEmpty else { return }
            let building = name + "_building"
            _ = try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(building) WITH (FORCE)"), logger: server.logger)
            _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(building) TEMPLATE template0"), logger: server.logger)
            // Skipper's migrations, then the demo shop's (its own set and history), as make run does.
            for folder in [Paths.migrations, Paths.shopMigrations] {
                let result = try await runProcess(
                    Executables.path("skipper-migrate"),
                    ["up", "--path", folder.path, "--database-url", server.admin.with(database: building).url(redacted: false)])
                guard result.status == 0 else {
                    throw TestSetupError("skipper-migrate up --path \(folder.lastPathComponent) failed for the template: \(result.stderr)")
                }
            }
            _ = try await connection.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(building) RENAME TO \(name)"), logger: server.logger)
            _ = try await connection.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(name) WITH ALLOW_CONNECTIONS false"), logger: server.logger)
        }
        self.name = name
        return name
    }

    /// FNV-1a over the migration files' names and contents: a changed file makes a new template.
    static func migrationsHash() throws -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let files = try [Paths.migrations, Paths.shopMigrations].flatMap { folder in
            try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted().map { folder.appendingPathComponent($0) }
        }.filter { !$0.hasDirectoryPath && $0.lastPathComponent != "shop" }
        for file in files {
            let name = file.deletingLastPathComponent().lastPathComponent + "/" + file.lastPathComponent
            let bytes = Array(name.utf8) + Array(try Data(contentsOf: file))
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        return String(hash, radix: 16)
    }
}
