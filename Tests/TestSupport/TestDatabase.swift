import Foundation
import Logging
import PostgresNIO
import Skipper

/// A database of its own for one test: created from a migrated template (or empty), dropped afterwards.
public struct TestDatabase: Sendable {
    /// Where it is; hand it to the code under test.
    public let config: DatabaseConfig
    /// The database's name.
    public var name: String { self.config.database }
    /// Its URL, password included, for child processes.
    public var url: String { self.config.url(redacted: false) }

    /// A handle on an existing database.
    public init(config: DatabaseConfig) { self.config = config }

    /// Runs one statement on a short-lived connection and returns the rows as text (nil for NULL).
    @discardableResult
    public func query(_ sql: PostgresQuery) async throws -> [[String?]] {
        try await TestServer.withConnection(to: self.config) { connection in
            try await TestServer.rows(of: sql, on: connection)
        }
    }

    /// The first column of the first row.
    public func scalar(_ sql: PostgresQuery) async throws -> String? {
        try await self.query(sql).first?.first ?? nil
    }
}

/// Runs `body` with a fresh database: migrated to the newest version (cloned from a template), or empty.
public func withTestDatabase<T: Sendable>(
    migrated: Bool = true,
    _ body: (TestDatabase) async throws -> T
) async throws -> T {
    let server = try TestServer.shared()
    let template = migrated ? try await TemplateCache.shared.migratedTemplate(server) : "template0"
    let name = "t_\(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF)"
    try await TestServer.withConnection(to: server.admin) { connection in
        _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) TEMPLATE \(template)"), logger: server.logger)
    }
    let database = TestDatabase(config: server.admin.with(database: name))
    do {
        let result = try await body(database)
        try await server.drop(name)
        return result
    } catch {
        try? await server.drop(name)
        throw error
    }
}

/// The PostgreSQL server the tests use: `DATABASE_URL`, as `make test` sets it.
public struct TestServer: Sendable {
    public let admin: DatabaseConfig
    let logger: Logger

    public static func shared() throws -> TestServer {
        let url = try Self.serverURL.get()
        var logger = Logger(label: "skipper.test")
        logger.logLevel = .warning
        return TestServer(admin: try DatabaseConfig(url: url), logger: logger)
    }

    /// `DATABASE_URL`, else the private cluster of scripts/db.sh (started once, as `make test` would).
    private static let serverURL: Result<String, TestSetupError> = {
        if let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty { return .success(url) }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("skipper-db-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let process = Process()
        process.executableURL = Paths.root.appendingPathComponent("scripts/db.sh")
        process.arguments = ["start"]
        guard let handle = try? FileHandle(forWritingTo: out) else { return .failure(TestSetupError("cannot write \(out.path)")) }
        process.standardOutput = handle
        do {
            try process.run()
            process.waitUntilExit()
        } catch {
            return .failure(TestSetupError("DATABASE_URL is unset and scripts/db.sh could not start PostgreSQL: \(error)"))
        }
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0, let range = text.range(of: "DATABASE_URL='") else {
            return .failure(TestSetupError("DATABASE_URL is unset and scripts/db.sh start failed; run `make test`"))
        }
        return .success(String(text[range.upperBound...].prefix { $0 != "'" }))
    }()

    func drop(_ name: String) async throws {
        try await Self.withConnection(to: self.admin) { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: self.logger)
        }
    }

    /// One connection for the length of `body`.
    public static func withConnection<T>(
        to config: DatabaseConfig, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        var logger = Logger(label: "skipper.test")
        logger.logLevel = .warning
        let tls: PostgresConnection.Configuration.TLS = config.tls == .require ? .require(try .init(configuration: .makeClientConfiguration())) : .disable
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: config.host, port: config.port, username: config.username, password: config.password,
                database: config.database, tls: tls),
            id: 1, logger: logger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Every row of a query as text.
    public static func rows(of sql: PostgresQuery, on connection: PostgresConnection) async throws -> [[String?]] {
        var logger = Logger(label: "skipper.test")
        logger.logLevel = .warning
        let rows = try await connection.query(sql, logger: logger)
        var result: [[String?]] = []
        for try await row in rows {
            result.append(row.map(Self.text(of:)))
        }
        return result
    }
}

extension TestServer {
    /// A cell as psql would print it: postgres-nio returns many types in binary, so decode by type.
    static func text(of cell: PostgresCell) -> String? {
        guard cell.bytes != nil else { return nil }
        switch cell.dataType {
        case .bool: return (try? cell.decode(Bool.self)).map { $0 ? "true" : "false" }
        case .int2, .int4, .int8: return (try? cell.decode(Int64.self)).map(String.init)
        case .float4, .float8: return (try? cell.decode(Double.self)).map { String($0) }
        case .uuid: return (try? cell.decode(UUID.self))?.uuidString.lowercased()
        case .numeric: return (try? cell.decode(Decimal.self)).map { "\($0)" }
        default:
            if let text = try? cell.decode(String.self) { return text }
            return cell.bytes.map { String(buffer: $0) }
        }
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension TestDatabase {
    /// A running postgres-nio client on this database for the length of `body`.
    public func withClient<T: Sendable>(maxConnections: Int = 20, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        try await withPostgresClient(self.config, maxConnections: maxConnections, body)
    }
}

/// A running postgres-nio client on `config` for the length of `body`.
public func withPostgresClient<T: Sendable>(
    _ config: DatabaseConfig, maxConnections: Int = 20, _ body: @Sendable (PostgresClient) async throws -> T
) async throws -> T {
    var logger = Logger(label: "skipper.test")
    logger.logLevel = .warning
    let client = PostgresClient(
        configuration: config.clientConfiguration(maxConnections: maxConnections, applicationName: "skipper-test"),
        backgroundLogger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            await client.run()
            return nil
        }
        defer { group.cancelAll() }
        return try await body(client)
    }
}
