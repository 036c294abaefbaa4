import ArgumentParser
import Foundation

extension Migrate {
    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply pending migrations, oldest first.")
        @Argument(help: "How many to apply (default: all pending).") var steps: Int?
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if let steps = self.steps, steps < 1 { throw ValidationError("the number of steps must be at least 1") }
        }
        func run() throws { try self.connection.migrator().up(steps: self.steps) }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Undo applied migrations, newest first.")
        @Argument(help: "How many to undo.") var steps: Int?
        @Flag(help: "Undo every applied migration.") var all = false
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if self.all && self.steps != nil { throw ValidationError("give a number of steps or --all, not both") }
            if !self.all && self.steps == nil { throw ValidationError("give a number of steps to undo, or --all") }
            if let steps = self.steps, steps < 1 { throw ValidationError("the number of steps must be at least 1") }
        }
        func run() throws { try self.connection.migrator().down(steps: self.all ? nil : self.steps) }
    }

    struct Goto: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Migrate up or down to version V (0: none applied).")
        @OptionGroup var target: TargetVersion

        func run() throws { try self.target.migrator().goto(self.target.version) }
    }

    struct Force: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record version V as applied and clean without running anything (0: none applied).",
            discussion: "The way out of a dirty database: check the schema by hand, then force the version it is at."
        )
        @OptionGroup var target: TargetVersion

        func run() throws { try self.target.migrator().force(self.target.version) }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the current version, the dirty flag, and applied and pending migrations.")
        @OptionGroup var connection: ConnectionOptions

        func run() throws {
            let migrator = try self.connection.migrator()
            let state = try migrator.state()
            let current = state.version ?? 0
            print("database: \(migrator.database.url())")
            print("version:  \(state.version.map(String.init) ?? "none")\(state.dirty ? " (dirty)" : "")")
            let applied = migrator.source.migrations.filter { $0.version <= current }
            let pending = migrator.source.migrations.filter { $0.version > current }
            print("applied:  \(applied.count)")
            for migration in applied { print("  \(migration.label)") }
            print("pending:  \(pending.count)")
            for migration in pending { print("  \(migration.label)") }
            if let version = state.version, migrator.source.migration(version) == nil {
                print("warning:  version \(version) has no file in \(migrator.source.folder.path)")
            }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the next numbered pair of empty migration files.")
        @Argument(help: "What the migration does, in lower_snake_case.") var name: String
        @Option(help: "Folder of migrations.") var path = "./migrations"

        func validate() throws {
            let allowed = self.name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }
            if self.name.isEmpty || !allowed || self.name.count > 100 {
                throw ValidationError("the name must be lower_snake_case letters, digits and underscores, not '\(self.name)'")
            }
        }

        func run() throws {
            let source = try MigrationSource(path: self.path)
            let next = (source.migrations.last?.version ?? 0) + 1
            let digits = String(next)
            let stem = String(repeating: "0", count: max(0, 6 - digits.count)) + digits + "_" + self.name
            let up = source.folder.appendingPathComponent("\(stem).up.sql")
            let down = source.folder.appendingPathComponent("\(stem).down.sql")
            do {
                try Data("-- \(stem): what this migration does.\n".utf8).write(to: up, options: .withoutOverwriting)
                try Data("-- Undo exactly what \(stem).up.sql does.\n".utf8).write(to: down, options: .withoutOverwriting)
            } catch {
                throw MigrateError.source("cannot write \(stem) in \(self.path): \(error.localizedDescription)")
            }
            print("created \(self.path)/\(stem).up.sql")
            print("created \(self.path)/\(stem).down.sql")
        }
    }
}

/// The version argument of `goto` and `force`, with the connection, checked against the migrations folder.
struct TargetVersion: ParsableArguments {
    @Argument(help: "The version (0: none applied).") var version: Int64
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if self.version < 0 { throw ValidationError("the version must be 0 or more") }
    }

    func migrator() throws -> Migrator {
        try self.connection.migrator { source throws(MigrateError) in
            try Migrator.requireVersion(self.version, in: source)
        }
    }
}
