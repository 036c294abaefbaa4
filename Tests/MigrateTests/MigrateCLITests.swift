import Foundation
import Skipper
import Testing
import TestSupport

@Suite struct MigrateCLITests {
    @Test func upDownAllUpLeavesTheSameSchemaAsOneUp() async throws {
        try await withTestDatabase(migrated: false) { once in
            try await withTestDatabase(migrated: false) { thrice in
                let empty = try await schemaDump(thrice.url)
                #expect(try await migrate(["up"], url: once.url).status == 0)
                #expect(try await migrate(["up"], url: thrice.url).status == 0)
                let down = try await migrate(["down", "--all"], url: thrice.url)
                #expect(down.status == 0, "\(down.stderr)")
                #expect(down.stdout.contains("reverted 000001_skipper_queue"))
                // Down undoes exactly what up did: only golang-migrate's version table is left.
                let afterDown = try await schemaDump(thrice.url)
                #expect(afterDown.contains("schema_migrations"))
                #expect(!afterDown.contains("skipper.jobs"))
                #expect(!afterDown.contains("CREATE TABLE public.transactions"))
                #expect(!empty.contains("skipper"))
                #expect(try await migrate(["up"], url: thrice.url).status == 0)
                #expect(try await schemaDump(once.url) == schemaDump(thrice.url))
                #expect(try await thrice.scalar("SELECT version || ':' || dirty FROM skipper.schema_migrations") == "\(SchemaVersion.expected):false")
            }
        }
    }

    /// The CLI defaulted to ./migrations, so it worked only from the checkout; without --path it now applies the
    /// migrations built into it, from any directory, and `status` lists them.
    @Test func withoutAPathTheBuiltInMigrationsApplyFromAnyDirectory() async throws {
        try await withTestDatabase(migrated: false) { db in
            let migrate = Executables.path("skipper-migrate")
            var env = ProcessInfo.processInfo.environment
            env["DATABASE_URL"] = db.url
            let up = try await runProcess("/bin/sh", ["-c", "cd / && exec \"$0\" up", migrate], environment: env)
            #expect(up.status == 0, "\(up.stdout)\(up.stderr)")
            #expect(up.stdout.contains("applied 000001_skipper_queue"), "\(up.stdout)")
            #expect(try await db.scalar("SELECT version || ':' || dirty FROM skipper.schema_migrations") == "\(SchemaVersion.expected):false")
            let status = try await runProcess("/bin/sh", ["-c", "cd / && exec \"$0\" status", migrate], environment: env)
            #expect(status.status == 0 && status.stdout.contains("pending:  0"), "\(status.stdout)\(status.stderr)")
        }
    }

    @Test func threeConcurrentUpsApplyEachMigrationOnce() async throws {
        try await withTestDatabase(migrated: false) { db in
            async let a = migrate(["up"], url: db.url)
            async let b = migrate(["up"], url: db.url)
            async let c = migrate(["up"], url: db.url)
            let results = try await [a, b, c]
            for result in results { #expect(result.status == 0, "\(result.stderr)") }
            let output = results.map(\.stdout).joined()
            #expect(output.components(separatedBy: "applied 000001_skipper_queue").count - 1 == 1)
            #expect(output.components(separatedBy: "applied 000002_shop").count - 1 == 1)
            #expect(output.components(separatedBy: "no change").count - 1 == 2)
            #expect(try await db.scalar("SELECT count(*) FROM skipper.schema_migrations") == "1")
            #expect(try await db.scalar("SELECT version FROM skipper.schema_migrations") == "\(SchemaVersion.expected)")
        }
    }

    @Test func aBrokenMigrationRollsBackMarksDirtyAndRecoversWithForce() async throws {
        let folder = try copyOfMigrations()
        defer { try? FileManager.default.removeItem(at: folder) }
        try write("CREATE TABLE half_done (id int);\n-- the next line is wrong\nCREATE TABEL oops (id int);\n", to: folder, "000099_broken.up.sql")
        try write("DROP TABLE oops;\nDROP TABLE half_done;\n", to: folder, "000099_broken.down.sql")
        try await withTestDatabase(migrated: false) { db in
            let failed = try await migrate(["up"], url: db.url, path: folder)
            #expect(failed.status != 0)
            #expect(failed.stdout.contains("applied 000002_shop"))
            let line = failed.stderr.trimmingCharacters(in: .newlines)
            #expect(!line.contains("\n"), "one line: \(line)")
            #expect(line.contains("000099_broken.up.sql:3:8: syntax error at or near \"TABEL\""), "\(line)")
            #expect(line.contains("force \(SchemaVersion.expected)"))
            // Rolled back: the statement before the error left nothing behind.
            #expect(try await db.scalar("SELECT to_regclass('half_done') IS NULL") == "true")
            #expect(try await db.scalar("SELECT version || ':' || dirty FROM skipper.schema_migrations") == "99:true")

            let status = try await migrate(["status"], url: db.url, path: folder)
            #expect(status.stdout.contains("version:  99 (dirty)"))
            let refused = try await migrate(["up"], url: db.url, path: folder)
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("dirty at version 99"))

            try write("CREATE TABLE half_done (id int);\nCREATE TABLE oops (id int);\n", to: folder, "000099_broken.up.sql")
            #expect(try await migrate(["force", "\(SchemaVersion.expected)"], url: db.url, path: folder).stdout.contains("forced version \(SchemaVersion.expected)"))
            let fixed = try await migrate(["up"], url: db.url, path: folder)
            #expect(fixed.status == 0, "\(fixed.stderr)")
            #expect(fixed.stdout.contains("applied 000099_broken"))
            #expect(try await db.scalar("SELECT version || ':' || dirty FROM skipper.schema_migrations") == "99:false")
            #expect(try await migrate(["down", "1"], url: db.url, path: folder).status == 0)
            #expect(try await db.scalar("SELECT to_regclass('oops') IS NULL") == "true")
        }
    }

    @Test func statusListsAppliedAndPending() async throws {
        try await withTestDatabase(migrated: false) { db in
            #expect(try await migrate(["up", "1"], url: db.url).stdout.contains("applied 000001_skipper_queue"))
            let status = try await migrate(["status"], url: db.url)
            #expect(status.status == 0)
            #expect(status.stdout.contains("version:  1\n"))
            #expect(status.stdout.contains("applied:  1\n  000001_skipper_queue\npending:  \(SchemaVersion.expected - 1)\n  000002_shop\n"))
            #expect(!status.stdout.contains(db.config.password ?? "\u{0}"))
            #expect(try await migrate(["goto", "2"], url: db.url).stdout.contains("applied 000002_shop"))
            #expect(try await migrate(["goto", "0"], url: db.url).stdout.contains("reverted 000001_skipper_queue"))
            #expect(try await migrate(["status"], url: db.url).stdout.contains("version:  none\n"))
        }
    }

    @Test func createWritesTheNextNumberedPair() async throws {
        let folder = try copyOfMigrations()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try await migrate(["create", "add_widgets"], url: nil, path: folder)
        #expect(result.status == 0, "\(result.stderr)")
        let next = String(format: "%06d", SchemaVersion.expected + 1)
        #expect(result.stdout.contains("\(next)_add_widgets.up.sql"))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("\(next)_add_widgets.up.sql").path))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("\(next)_add_widgets.down.sql").path))
        let again = try await migrate(["create", "add_gadgets"], url: nil, path: folder)
        #expect(again.stdout.contains(String(format: "%06d", SchemaVersion.expected + 2) + "_add_gadgets.down.sql"))
    }
}
