import Foundation
import Testing
import TestSupport

@testable import Migrate

/// Each bad input gives one clear line on stderr, a non-zero exit, and leaves the database untouched.
@Suite struct MigrateBadInputTests {
    enum Folder { case real, missing, file(String, String) }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let arguments: [String]
        let folder: Folder
        let unreachable: Bool
        let expected: String
        var environment: [String: String] = [:]
        var testDescription: String { self.name }
    }

    static let cases: [Case] = [
        Case(name: "unknown command", arguments: ["sideways"], folder: .real, unreachable: false, expected: "unknown command 'sideways'"),
        Case(name: "missing folder", arguments: ["up"], folder: .missing, unreachable: false, expected: "does not exist"),
        Case(name: "malformed file name", arguments: ["up"], folder: .file("3_oops.sql", ""), unreachable: false, expected: "malformed migration file name"),
        Case(name: "duplicate version", arguments: ["up"], folder: .file("000002_again.up.sql", ""), unreachable: false, expected: "version 2 has two up files"),
        Case(name: "missing pair", arguments: ["up"], folder: .file("000099_lonely.up.sql", ""), unreachable: false, expected: "has no down file"),
        Case(name: "unreachable database", arguments: ["up"], folder: .real, unreachable: true, expected: "cannot connect to"),
        Case(name: "down without a count", arguments: ["down"], folder: .real, unreachable: false, expected: "give a number of steps"),
        Case(name: "goto an unknown version", arguments: ["goto", "42"], folder: .real, unreachable: false, expected: "no migration with version 42"),
        Case(name: "force a non-number", arguments: ["force", "two"], folder: .real, unreachable: false, expected: "two"),
        Case(name: "create with a bad name", arguments: ["create", "Drop Tables"], folder: .real, unreachable: false, expected: "lower_snake_case"),
        Case(
            name: "through a transaction pooler", arguments: ["up"], folder: .real, unreachable: false, expected: "run migrations on a direct connection",
            environment: ["DB_POOLER": "pgbouncer"]),
    ]

    @Test(arguments: Self.cases)
    func badInputIsOneClearLine(_ bad: Case) async throws {
        var path = Paths.migrations
        var cleanup: URL?
        switch bad.folder {
        case .real: break
        case .missing: path = URL(fileURLWithPath: "/nonexistent/skipper-migrations")
        case .file(let name, let text):
            path = try copyOfMigrations()
            cleanup = path
            try write(text, to: path, name)
        }
        defer { if let cleanup { try? FileManager.default.removeItem(at: cleanup) } }
        try await withTestDatabase(migrated: false) { db in
            let url = bad.unreachable ? "postgres://nobody@127.0.0.1:1/nothing" : db.url
            let result = try await migrate(bad.arguments, url: url, path: path, environment: bad.environment)
            #expect(result.status != 0)
            #expect(result.stdout.isEmpty)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(result.stderr)")
            #expect(result.stderr.hasPrefix("skipper-migrate: "))
            #expect(result.stderr.contains(bad.expected), "\(result.stderr)")
            #expect(try await db.scalar("SELECT to_regclass('skipper.schema_migrations') IS NULL") == "true")
        }
    }

    @Test func lockKeyIsGolangMigratesFormula() {
        // CRC-32 (IEEE) check value, then golang-migrate's salt multiplication in 32 bits.
        #expect(AdvisoryLockID.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        let crc = AdvisoryLockID.crc32(Array("public\u{0}schema_migrations\u{0}skipper".utf8))
        #expect(AdvisoryLockID.forDatabase("skipper", schema: "public", table: "schema_migrations") == Int64(crc &* 1_486_364_155))
    }

    @Test func errorPositionsBecomeLinesAndColumns() {
        let text = "SELECT 1;\nCREATE TABEL x;\n"
        #expect(Migrator.lineAndColumn(of: 1, in: text)! == (1, 1))
        #expect(Migrator.lineAndColumn(of: 18, in: text)! == (2, 8))
        #expect(Migrator.lineAndColumn(of: 99, in: text) == nil)
    }
}
