import Foundation
import Logging
import PostgresNIO
import Testing
import TestSupport

@testable import Skipper

/// Skipper's schema stands on its own: its history is `skipper.schema_migrations`, the demo shop is a migration set
/// of its own (migrations/shop, history `public.schema_migrations`), and an application's tables and golang-migrate
/// history beside it are never touched or mistaken for Skipper's.
@Suite struct SchemaLayoutTests {
    let logger = Logger(label: "test")

    func check(_ db: TestDatabase) async throws -> SchemaVersion.Status {
        try await db.withClient(maxConnections: 1) { try await SchemaVersion.check($0, logger: self.logger) }
    }

    /// An application with its own `orders` table and golang-migrate history at 20240101120000: Skipper's `up`
    /// failed on `orders` and marked itself dirty, and its schema check passed on the app's version (and then the
    /// runner retried "relation skipper.runners does not exist" forever). Now Skipper migrates beside them, by the
    /// CLI and by the library alike, and reads only its own history.
    @Test(arguments: [true, false])
    func anApplicationsOwnTablesAndHistoryStayItsOwn(byLibrary: Bool) async throws {
        try await withTestDatabase(migrated: false) { db in
            try await db.query("CREATE TABLE orders (order_no text PRIMARY KEY, customer text NOT NULL)")
            try await db.query("INSERT INTO orders VALUES ('A-1', 'ana')")
            try await db.query("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)")
            try await db.query("INSERT INTO schema_migrations VALUES (20240101120000, false)")
            #expect(try await self.check(db) == .empty)
            if byLibrary {
                let version = try await db.withClient(maxConnections: 2) { try await SkipperMigrations(postgres: $0, logger: self.logger).apply() }
                #expect(version == SchemaVersion.expected)
            } else {
                let up = try await migrate(["up"], url: db.url, path: Paths.migrations)
                #expect(up.status == 0, "\(up.stdout)\(up.stderr)")
            }
            #expect(try await self.check(db) == .ready(version: SchemaVersion.expected))
            #expect(try await db.scalar("SELECT version || ':' || dirty FROM public.schema_migrations") == "20240101120000:false")
            #expect(try await db.scalar("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'orders'") == "order_no,customer")
            #expect(try await db.scalar("SELECT count(*) FROM orders") == "1")
            // Nothing of the shop came with it.
            #expect(try await db.scalar("SELECT to_regclass('public.transactions') IS NULL AND to_regclass('public.settlements') IS NULL") == "true")
            let status = try await migrate(["status"], url: db.url, path: Paths.migrations)
            #expect(status.stdout.contains("version:  \(SchemaVersion.expected)") && status.stdout.contains("pending:  0"), "\(status.stdout)")
        }
    }

    /// A database of the layout before this change (Skipper's history in public.schema_migrations, the shop's tables
    /// made by Skipper's versions 2, 4 and 7), at version 7: `up` moves the history into skipper.schema_migrations,
    /// applies versions 8 onwards, leaves public.schema_migrations as the shop's (at its version 3, which matches), and loses
    /// no job; until then the runner's check asks for the migration.
    @Test func aDatabaseOfTheOldLayoutMovesItsHistoryAndKeepsItsJobs() async throws {
        try await withTestDatabase { db in
            try await db.query("INSERT INTO skipper.jobs (kind, status, attempt, started_at, finished_at) VALUES ('noop', 'COMPLETED', 1, now(), now())")
            try await db.query("INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, 5)")
            #expect(try await migrate(["down", "\(SchemaVersion.expected - 7)"], url: db.url, path: Paths.migrations).status == 0)
            // The old layout: one history, in public, at Skipper's version.
            try await db.query("DROP TABLE skipper.schema_migrations")
            try await db.query("DELETE FROM public.schema_migrations")
            try await db.query("INSERT INTO public.schema_migrations VALUES (7, false)")
            #expect(try await self.check(db) == .behind(version: 0))

            let up = try await migrate(["up"], url: db.url, path: Paths.migrations)
            #expect(up.status == 0, "\(up.stdout)\(up.stderr)")
            #expect(up.stdout.contains("applied 000008_runner_rights") && up.stdout.contains("applied 000009_operations"), "\(up.stdout)")
            #expect(try await db.scalar("SELECT version || ':' || dirty FROM skipper.schema_migrations") == "\(SchemaVersion.expected):false")
            #expect(try await db.scalar("SELECT version || ':' || dirty FROM public.schema_migrations") == "3:false")
            let shop = try await migrate(["up"], url: db.url, path: Paths.shopMigrations)
            #expect(shop.status == 0 && shop.stdout.contains("no change"), "\(shop.stdout)\(shop.stderr)")
            #expect(try await self.check(db) == .ready(version: SchemaVersion.expected))
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "6")
            #expect(try await db.scalar("SELECT has_table_privilege('skipper_runner', 'skipper.schema_migrations', 'SELECT')") == "true")
        }
    }
}
