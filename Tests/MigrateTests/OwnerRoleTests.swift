import Foundation
import PostgresNIO
import Testing
import TestSupport

@testable import Skipper

/// The owner that scripts/roles.sql makes runs every migration, and cannot make itself more than it is: with
/// CREATEROLE (as the script gave it), PostgreSQL 15 let it grant itself pg_execute_server_program and run shell
/// commands as the server's OS user.
@Suite struct OwnerRoleTests {
    static var psql: String {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let path = "/usr/lib/postgresql/\(version)/bin/psql"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return "/usr/bin/psql"
    }

    @Test func theOwnerMigratesEverythingAndCannotEscalate() async throws {
        try await withTestDatabase(migrated: false) { db in
            let roles = try await runProcess(
                Self.psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.url, "-f", Paths.root.appendingPathComponent("scripts/roles.sql").path])
            #expect(roles.status == 0, "\(roles.stderr)")
            var owner = db.config
            owner.username = "skipper_owner"
            owner.password = nil
            let up = try await migrate(["up"], url: owner.url(redacted: false))
            #expect(up.status == 0, "\(up.stdout)\(up.stderr)")
            #expect(try await db.scalar("SELECT version FROM skipper.schema_migrations") == "\(SchemaVersion.expected)")
            #expect(try await db.scalar("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = 'skipper_owner'") == "false")
            for statement in ["GRANT pg_execute_server_program TO skipper_owner", "CREATE ROLE skipper_mine LOGIN",
                              "ALTER ROLE skipper_owner CREATEROLE"] {
                let refused: String? = try await withPostgresClient(owner, maxConnections: 1) { client in
                    do {
                        try await client.query(PostgresQuery(unsafeSQL: statement), logger: .init(label: "test"))
                        return nil
                    } catch let error as PSQLError {
                        return error.serverInfo?[.sqlState]
                    }
                }
                #expect(refused == "42501", "\(statement) gave \(refused ?? "success")")
            }
        }
    }
}
