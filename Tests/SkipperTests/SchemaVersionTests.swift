import Foundation
import Logging
import PostgresNIO
import Skipper
import Testing
import TestSupport

@Suite struct SchemaVersionTests {
    @Test func expectedVersionIsTheNewestMigration() throws {
        let versions = try FileManager.default.contentsOfDirectory(atPath: Paths.migrations.path)
            .compactMap { $0.split(separator: "_").first.flatMap { Int64($0) } }
        #expect(versions.max() == SchemaVersion.expected)
    }

    @Test func checkReportsEmptyReadyAndDirty() async throws {
        try await withTestDatabase(migrated: false) { db in
            let status = try await self.status(db)
            #expect(status == .empty)
        }
        try await withTestDatabase { db in
            #expect(try await self.status(db) == .ready(version: SchemaVersion.expected))
            try await db.query("UPDATE skipper.schema_migrations SET version = 1")
            #expect(try await self.status(db) == .behind(version: 1))
            try await db.query("UPDATE skipper.schema_migrations SET dirty = true")
            #expect(try await self.status(db) == .dirty(version: 1))
        }
    }

    private func status(_ db: TestDatabase) async throws -> SchemaVersion.Status {
        let logger = Logger(label: "test")
        let client = PostgresClient(configuration: db.config.clientConfiguration(maxConnections: 2, applicationName: "test"))
        return try await withThrowingTaskGroup(of: SchemaVersion.Status?.self) { group in
            group.addTask { await client.run(); return nil }
            defer { group.cancelAll() }
            return try await SchemaVersion.check(client, logger: logger)
        }
    }
}
