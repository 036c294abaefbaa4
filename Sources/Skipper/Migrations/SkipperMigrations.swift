import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// One migration built into the library: its version, name, and the SQL of each direction.
struct EmbeddedMigration: Sendable {
    let version: Int64
    let name: String
    let up: String
    let down: String

    /// `000001_skipper_queue`, as the file is named.
    var label: String { String(repeating: "0", count: max(0, 6 - String(self.version).count)) + "\(self.version)_\(self.name)" }
}

/// The built-in migrations as the files they were made from (`NNNNNN_name.up.sql`, text), for skipper-migrate.
package enum BuiltInMigrations {
    package static var files: [(name: String, text: String)] {
        EmbeddedMigrations.all.flatMap { [("\($0.label).up.sql", $0.up + "\n"), ("\($0.label).down.sql", $0.down + "\n")] }
    }
}

/// Where Skipper keeps its migration history: in its own schema, apart from an application's (an app's golang-migrate
/// history is `public.schema_migrations`), so the two never mistake each other's versions.
package enum SkipperHistory {
    package static let schema = "skipper"
    package static let table = "schema_migrations"
    package static let qualified = "skipper.schema_migrations"

    /// Before this build Skipper kept its history in `public.schema_migrations`, with the demo shop's tables in its
    /// own versions 2, 4 and 7. On such a database (Skipper's schema there, no history of its own yet, a version
    /// Skipper knows), this moves the history into `skipper.schema_migrations` and leaves `public.schema_migrations`
    /// as the shop's (its migrations/shop versions 1 to 3 match what those versions made). Runs under Skipper's
    /// migration lock; does nothing on any other database.
    package static let adoptLegacyLayout = """
        DO $adopt$
        DECLARE
            legacy_version bigint;
            legacy_dirty boolean;
        BEGIN
            IF to_regclass('skipper.schema_migrations') IS NOT NULL OR to_regclass('public.schema_migrations') IS NULL
               OR to_regclass('skipper.jobs') IS NULL THEN
                RETURN;
            END IF;
            SELECT version, dirty INTO legacy_version, legacy_dirty FROM public.schema_migrations LIMIT 1;
            IF legacy_version IS NULL OR legacy_version > 8 THEN
                RETURN;
            END IF;
            CREATE TABLE skipper.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
            INSERT INTO skipper.schema_migrations (version, dirty) VALUES (legacy_version, legacy_dirty);
            DELETE FROM public.schema_migrations;
            IF legacy_version >= 2 THEN
                INSERT INTO public.schema_migrations (version, dirty)
                VALUES (CASE WHEN legacy_version >= 7 THEN 3 WHEN legacy_version >= 4 THEN 2 ELSE 1 END, false);
            END IF;
            IF legacy_version >= 7 THEN
                GRANT SELECT ON skipper.schema_migrations TO skipper_api, skipper_runner;
            END IF;
        END
        $adopt$
        """
}

/// Why migrating stopped.
public enum MigrationError: Error, CustomStringConvertible, Equatable {
    /// A migration failed earlier and nobody has looked since (`skipper-migrate force` after fixing it).
    case dirty(version: Int64)
    /// A migration failed now: its transaction rolled back, and the version is recorded dirty.
    case failed(migration: String, statement: Int, message: String)

    public var description: String {
        switch self {
        case .dirty(let version):
            return "the schema is dirty at version \(version): a migration failed; fix it and run skipper-migrate force"
        case .failed(let migration, let statement, let message):
            return "\(migration) failed at its statement \(statement): \(message)"
        }
    }
}

/// Skipper's schema migrations, built into the library: applies the ones a database lacks, with the same version
/// table (`skipper.schema_migrations`) and advisory lock as `skipper-migrate` and golang-migrate (so any of them may run
/// at once: one migrates, the others wait and find nothing to do), one transaction per migration, and the same
/// dirty-state rule (a failed migration leaves its version dirty, and nothing more is applied until someone looks).
///
/// As a function: `try await SkipperMigrations(postgres: postgres, logger: logger).apply()` while `postgres` runs.
/// As a `Service`, before the runner in your `ServiceGroup`: it applies, then stays until shutdown; give it to the
/// runner (`JobRunner(…, migrations:)`) and the runner starts once the schema is in place.
public final class SkipperMigrations: Service, Sendable {
    /// The newest migration this build knows.
    public static var latestVersion: Int64 { EmbeddedMigrations.all.last?.version ?? 0 }

    let postgres: PostgresClient
    let logger: Logger
    private let applied = StartGate()
    private let outcome = Mutex<Result<Int64?, any Error>?>(nil)

    public init(postgres: PostgresClient, logger: Logger) {
        self.postgres = postgres
        self.logger = logger
    }

    /// Applies every migration the database lacks; returns the version it stands at.
    @discardableResult
    public func apply() async throws -> Int64? {
        try await self.postgres.withConnection { connection in
            try await self.apply(on: connection)
        }
    }

    public func run() async throws {
        do {
            let version = try await cancelWhenGracefulShutdown { try await self.apply() }
            self.outcome.withLock { $0 = .success(version) }
        } catch {
            self.outcome.withLock { $0 = .failure(error) }
            self.applied.open()
            throw error
        }
        self.applied.open()
        try? await gracefulShutdown()
    }

    /// Waits until the service has applied the migrations (or failed to: then throws its error).
    public func waitUntilApplied() async throws {
        await self.applied.waitForStart()
        switch self.outcome.withLock({ $0 }) {
        case .failure(let error): throw error
        case .success: return
        case nil: throw CancellationError()
        }
    }

    // MARK: - Applying

    private func apply(on connection: PostgresConnection) async throws -> Int64? {
        let database = try await self.scalar("SELECT current_database()", on: connection) ?? ""
        let lock = SchemaLock.id(database: database, schema: SkipperHistory.schema, table: SkipperHistory.table)
        // Polled, as skipper-migrate does: a session blocked in pg_advisory_lock holds a snapshot that a concurrent
        // CREATE INDEX CONCURRENTLY of the migrating session would wait for.
        while try await self.scalar("SELECT pg_try_advisory_lock(\(lock))::text", on: connection) != "true" {
            try await Task.sleep(for: .milliseconds(100))
        }
        do {
            try await self.exec(SkipperHistory.adoptLegacyLayout, on: connection)
            try await self.exec("CREATE SCHEMA IF NOT EXISTS \(SkipperHistory.schema)", on: connection)
            let version = try await self.applyLocked(table: SkipperHistory.qualified, on: connection)
            _ = try? await self.scalar("SELECT pg_advisory_unlock(\(lock))::text", on: connection)
            return version
        } catch {
            _ = try? await self.scalar("SELECT pg_advisory_unlock(\(lock))::text", on: connection)
            throw error
        }
    }

    private func applyLocked(table: String, on connection: PostgresConnection) async throws -> Int64? {
        try await self.exec("CREATE TABLE IF NOT EXISTS \(table) (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)", on: connection)
        var version: Int64?
        var dirty = false
        let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT version, dirty FROM \(table) LIMIT 1"), logger: self.logger)
        for try await (v, d) in rows.decode((Int64, Bool).self) {
            version = v
            dirty = d
        }
        if dirty, let version { throw MigrationError.dirty(version: version) }
        for migration in EmbeddedMigrations.all where migration.version > (version ?? 0) {
            let started = ContinuousClock.now
            try await self.run(migration, table: table, on: connection)
            version = migration.version
            self.logger.info("applied migration", metadata: ["migration": "\(migration.label)", "took": "\(ContinuousClock.now - started)"])
        }
        return version
    }

    /// One migration in one transaction, recorded with its version; or, for a file marked to run outside a
    /// transaction (`CREATE INDEX CONCURRENTLY`), statement by statement between a dirty and a clean record.
    private func run(_ migration: EmbeddedMigration, table: String, on connection: PostgresConnection) async throws {
        let statements = SQLScript.statements(migration.up)
        let outside = migration.up.split(separator: "\n", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces) == "-- skipper-migrate: no transaction"
        } ?? false
        if outside {
            try await self.record(migration.version, dirty: true, table: table, on: connection)
            for (index, statement) in statements.enumerated() {
                do {
                    try await self.exec(statement, on: connection)
                } catch {
                    throw MigrationError.failed(migration: migration.label, statement: index + 1, message: Self.message(error))
                }
            }
            try await self.record(migration.version, dirty: false, table: table, on: connection)
            return
        }
        try await self.exec("BEGIN", on: connection)
        for (index, statement) in statements.enumerated() {
            do {
                try await self.exec(statement, on: connection)
            } catch {
                _ = try? await self.exec("ROLLBACK", on: connection)
                // The schema stands where it was; dirty makes a person look before anything more is applied.
                try await self.record(migration.version, dirty: true, table: table, on: connection)
                throw MigrationError.failed(migration: migration.label, statement: index + 1, message: Self.message(error))
            }
        }
        try await self.exec("DELETE FROM \(table)", on: connection)
        try await self.exec("INSERT INTO \(table) (version, dirty) VALUES (\(migration.version), false)", on: connection)
        try await self.exec("COMMIT", on: connection)
    }

    private func record(_ version: Int64, dirty: Bool, table: String, on connection: PostgresConnection) async throws {
        try await self.exec("BEGIN", on: connection)
        try await self.exec("DELETE FROM \(table)", on: connection)
        try await self.exec("INSERT INTO \(table) (version, dirty) VALUES (\(version), \(dirty))", on: connection)
        try await self.exec("COMMIT", on: connection)
    }

    private func exec(_ sql: String, on connection: PostgresConnection) async throws {
        // Only the library's own SQL and version numbers: nothing from outside is spliced in.
        try await connection.query(PostgresQuery(unsafeSQL: sql), logger: self.logger).collect()
    }

    private func scalar(_ sql: String, on connection: PostgresConnection) async throws -> String? {
        for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: self.logger).decode(String?.self) {
            return value
        }
        return nil
    }

    private static func message(_ error: any Error) -> String {
        if let error = error as? PSQLError, let message = error.serverInfo?[.message] {
            return message + (error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
        }
        return "\(error)"
    }
}

/// golang-migrate's advisory lock key (as skipper-migrate takes it): CRC-32 (IEEE) of "schema\0table\0database",
/// times its salt in 32-bit arithmetic.
package enum SchemaLock {
    package static func id(database: String, schema: String, table: String) -> Int64 {
        Int64(Self.crc32(Array("\(schema)\u{0}\(table)\u{0}\(database)".utf8)) &* 1_486_364_155)
    }

    package static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
