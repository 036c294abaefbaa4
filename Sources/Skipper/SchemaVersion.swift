import Logging
import PostgresNIO

/// The migration version this build of Skipper was written against, and the check every process makes at start.
public enum SchemaVersion {
    /// The newest file in migrations/ when this build was made; a test keeps the two equal.
    public static let expected: Int64 = 12

    /// What Skipper's history (`skipper.schema_migrations`) says.
    public enum Status: Sendable, Equatable, CustomStringConvertible {
        /// At the expected version, or newer (a newer build migrated first; it stays compatible).
        case ready(version: Int64)
        /// No migrations applied.
        case empty
        /// Older than this build needs.
        case behind(version: Int64)
        /// A migration failed and nobody has forced a version since.
        case dirty(version: Int64)

        /// True when a process of this build can use the database.
        public var isUsable: Bool {
            if case .ready = self { return true }
            return false
        }

        public var description: String {
            switch self {
            case .ready(let version): return "schema at version \(version)"
            case .empty: return "the database has no Skipper schema: run skipper-migrate up"
            case .behind(let version):
                return "schema at version \(version), this build needs \(SchemaVersion.expected): run skipper-migrate up"
            case .dirty(let version):
                return "schema is dirty at version \(version): a migration failed; see skipper-migrate status"
            }
        }
    }

    /// Reads Skipper's own history (`skipper.schema_migrations`) through any connection of `client`: an
    /// application's history beside it (its golang-migrate `public.schema_migrations`, say) is never mistaken for it.
    public static func check(_ client: PostgresClient, logger: Logger) async throws -> Status {
        // The table is absent on a database nobody migrated; a query naming it would fail to parse there. A
        // database of the layout before this build (the history in public.schema_migrations) needs skipper-migrate
        // up, which moves it.
        let exists = try await client.query(
            """
            SELECT to_regclass('skipper.schema_migrations') IS NOT NULL,
                   CASE WHEN to_regclass('skipper.jobs') IS NOT NULL THEN to_regclass('public.schema_migrations') IS NOT NULL ELSE false END
            """, logger: logger)
        for try await (present, legacy) in exists.decode((Bool, Bool).self) where !present { return legacy ? .behind(version: 0) : .empty }
        let rows = try await client.query("SELECT version, dirty FROM skipper.schema_migrations LIMIT 1", logger: logger)
        for try await (version, dirty) in rows.decode((Int64, Bool).self) {
            if dirty { return .dirty(version: version) }
            return version >= Self.expected ? .ready(version: version) : .behind(version: version)
        }
        return .empty
    }
}

/// The database is not at a schema this build can use.
public struct SchemaNotUsable: Error, CustomStringConvertible {
    /// What the check found.
    public let status: SchemaVersion.Status
    public var description: String { "\(self.status)" }
}
