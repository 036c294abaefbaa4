import Foundation
import Skipper

/// Moves a database between versions of the migrations folder, one transaction per file, under golang-migrate's
/// advisory lock and in a `schema_migrations(version, dirty)` table as golang-migrate keeps it (Skipper's own:
/// `skipper.schema_migrations`).
struct Migrator {
    let source: MigrationSource
    let connection: PQConnection
    let database: DatabaseConfig
    let print: (String) -> Void
    /// The schema-qualified version table, found by `locked` before anything writes to it.
    let versionTable = Box("schema_migrations")

    /// The recorded version (nil when none is applied) and whether a failed migration left it dirty.
    struct State: Equatable {
        var version: Int64?
        var dirty: Bool
    }

    /// Applies up to `steps` pending migrations, all of them when nil.
    func up(steps: Int?) throws(MigrateError) {
        try self.locked { state throws(MigrateError) in
            try self.requireClean(state)
            let pending = self.source.migrations.filter { $0.version > (state.version ?? 0) }
            let chosen = steps.map { Array(pending.prefix($0)) } ?? pending
            guard !chosen.isEmpty else {
                self.print("no change: database is at version \(state.version.map(String.init) ?? "none")")
                return
            }
            var current = state.version
            for migration in chosen {
                try self.run(migration, up: true, from: current, to: migration.version)
                current = migration.version
            }
        }
    }

    /// Reverts the newest `steps` applied migrations, every one when nil.
    func down(steps: Int?) throws(MigrateError) {
        try self.locked { state throws(MigrateError) in
            try self.requireClean(state)
            let applied = self.source.migrations.filter { $0.version <= (state.version ?? 0) }.reversed()
            let chosen = steps.map { Array(applied.prefix($0)) } ?? Array(applied)
            guard !chosen.isEmpty else {
                self.print("no change: database is at version \(state.version.map(String.init) ?? "none")")
                return
            }
            for migration in chosen {
                try self.run(migration, up: false, from: migration.version, to: self.previous(migration.version))
            }
        }
    }

    /// Moves up or down until `target` is the newest applied migration; 0 means none applied.
    func goto(_ target: Int64) throws(MigrateError) {
        try self.locked { state throws(MigrateError) in
            try self.requireClean(state)
            let current = state.version ?? 0
            if target == current {
                self.print("no change: database is at version \(target == 0 ? "none" : String(target))")
            } else if target > current {
                var from = state.version
                for migration in self.source.migrations where migration.version > current && migration.version <= target {
                    try self.run(migration, up: true, from: from, to: migration.version)
                    from = migration.version
                }
            } else {
                for migration in self.source.migrations.reversed() where migration.version <= current && migration.version > target {
                    try self.run(migration, up: false, from: migration.version, to: self.previous(migration.version))
                }
            }
        }
    }

    /// Records `version` as applied and clean without running anything: the way out of a dirty state.
    func force(_ version: Int64) throws(MigrateError) {
        try self.locked { _ throws(MigrateError) in
            try self.sql { () throws(SQLFailure) in
                try self.connection.query("BEGIN")
                try self.record(version > 0 ? version : nil, dirty: false)
                try self.connection.query("COMMIT")
            }
            self.print("forced version \(version > 0 ? String(version) : "none") (clean)")
        }
    }

    /// The recorded state, read under the lock so a migration in flight is not half-reported.
    func state() throws(MigrateError) -> State {
        var result = State(version: nil, dirty: false)
        try self.locked { state throws(MigrateError) in result = state }
        return result
    }

    /// Refuses a target version the folder does not have (0 means none applied).
    static func requireVersion(_ version: Int64, in source: MigrationSource) throws(MigrateError) {
        guard version == 0 || source.migration(version) != nil else {
            let known = source.migrations.map { String($0.version) }.joined(separator: ", ")
            throw .usage("\(source.folder.path) has no migration with version \(version) (it has: \(known.isEmpty ? "none" : known); 0 means none applied)")
        }
    }

    // MARK: - Running one file

    private func run(_ migration: Migration, up: Bool, from: Int64?, to target: Int64?) throws(MigrateError) {
        let file = up ? migration.upFile : migration.downFile
        let script: String
        do {
            script = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw .source("cannot read \(file.path): \(error.localizedDescription)")
        }
        let started = ContinuousClock.now
        if Self.runsOutsideATransaction(script) {
            try self.runStatementByStatement(script, migration: migration, file: file, from: from, to: target)
        } else {
            do throws(SQLFailure) {
                try self.connection.query("BEGIN")
                try self.connection.execScript(script)
                guard self.connection.inTransaction else {
                    throw SQLFailure(message: "the file ended the transaction itself; remove its BEGIN/COMMIT/ROLLBACK")
                }
                try self.record(target, dirty: false)
                try self.connection.query("COMMIT")
            } catch {
                _ = try? self.connection.query("ROLLBACK")
                // The transaction rolled back, so the schema stands where it was; dirty makes a person look before going on.
                try self.sql { () throws(SQLFailure) in
                    try self.connection.query("BEGIN")
                    try self.record(migration.version, dirty: true)
                    try self.connection.query("COMMIT")
                }
                let position = error.position.flatMap { Self.lineAndColumn(of: $0, in: script) }
                throw .failed(
                    file: self.displayPath(file), line: position?.line, column: position?.column, failure: error,
                    standsAt: from, dirtyVersion: migration.version
                )
            }
        }
        let elapsed = ContinuousClock.now - started
        let ms = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        self.print("\(up ? "applied" : "reverted") \(migration.label) (\(ms) ms)")
    }

    /// The first line of a file that must run outside a transaction (`CREATE INDEX CONCURRENTLY`, which builds an
    /// index on a big table without blocking its writers).
    static let noTransactionMarker = "-- skipper-migrate: no transaction"

    static func runsOutsideATransaction(_ script: String) -> Bool {
        script.split(separator: "\n", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) == Self.noTransactionMarker } ?? false
    }

    /// Runs a file marked ``noTransactionMarker`` one statement at a time, each committed on its own: the version is
    /// recorded dirty first and clean at the end, so a failure half-way leaves it dirty for a person to look at. Such a
    /// file holds simple statements, each ending with a semicolon at the end of a line (no `$$` bodies), written so
    /// they can run again (`IF NOT EXISTS`).
    private func runStatementByStatement(_ script: String, migration: Migration, file: URL, from: Int64?, to target: Int64?) throws(MigrateError) {
        try self.sql { () throws(SQLFailure) in
            try self.connection.query("BEGIN")
            try self.record(migration.version, dirty: true)
            try self.connection.query("COMMIT")
        }
        var statement = ""
        var firstLine = 1
        var line = 0
        for text in script.split(separator: "\n", omittingEmptySubsequences: false) {
            line += 1
            if statement.isEmpty { firstLine = line }
            statement += text + "\n"
            guard text.trimmingCharacters(in: .whitespaces).hasSuffix(";") else { continue }
            do throws(SQLFailure) {
                try self.connection.execScript(statement)
            } catch {
                let position = error.position.flatMap { Self.lineAndColumn(of: $0, in: statement) }
                throw .failed(
                    file: self.displayPath(file), line: position.map { firstLine + $0.line - 1 } ?? firstLine,
                    column: position?.column, failure: error, standsAt: from, dirtyVersion: migration.version)
            }
            statement = ""
        }
        try self.sql { () throws(SQLFailure) in
            try self.connection.query("BEGIN")
            try self.record(target, dirty: false)
            try self.connection.query("COMMIT")
        }
    }

    private func record(_ version: Int64?, dirty: Bool) throws(SQLFailure) {
        let table = self.versionTable.value
        try self.connection.query("DELETE FROM \(table)")
        if let version {
            try self.connection.query(
                "INSERT INTO \(table) (version, dirty) VALUES ($1, $2)", [String(version), dirty ? "t" : "f"])
        }
    }

    private func previous(_ version: Int64) -> Int64? {
        self.source.migrations.last { $0.version < version }?.version
    }

    private func requireClean(_ state: State) throws(MigrateError) {
        if state.dirty, let version = state.version { throw .dirty(version: version) }
        if let version = state.version, self.source.migration(version) == nil {
            throw .missingFile(version: version, folder: self.source.folder.path)
        }
    }

    // MARK: - Lock and version table

    /// Holds golang-migrate's advisory lock while `body` runs; creates the version table on first use.
    ///
    /// The table is the folder's (``MigrationSource/versionTable``): Skipper's own history lives in
    /// `skipper.schema_migrations`, apart from an application's; a folder says otherwise in a `VERSION_TABLE` file
    /// (the demo shop's: `public.schema_migrations`). Before Skipper's history is first used, a database of the
    /// layout before this build has it moved there (``SkipperHistory/adoptLegacyLayout``).
    private func locked(_ body: (State) throws(MigrateError) -> Void) throws(MigrateError) {
        let (schema, name) = self.source.versionTable
        let lockID = AdvisoryLockID.forDatabase(self.database.database, schema: schema, table: name)
        // Polled rather than waited for: a session blocked in pg_advisory_lock sits in an open transaction, which a
        // CREATE INDEX CONCURRENTLY of the migrator holding the lock would wait for, deadlocking the two.
        try self.sql { () throws(SQLFailure) in
            while try self.connection.query("SELECT pg_try_advisory_lock($1)", [String(lockID)]).first?.first != "t" {
                usleep(100_000)
            }
        }
        defer { _ = try? self.connection.query("SELECT pg_advisory_unlock($1)", [String(lockID)]) }
        let table = Self.quoted(schema) + "." + Self.quoted(name)
        let state = try self.sql { () throws(SQLFailure) -> State in
            if schema == SkipperHistory.schema && name == SkipperHistory.table {
                try self.connection.execScript(SkipperHistory.adoptLegacyLayout)
            }
            try self.connection.query("CREATE SCHEMA IF NOT EXISTS \(Self.quoted(schema))")
            try self.connection.query(
                "CREATE TABLE IF NOT EXISTS \(table) (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)")
            let rows = try self.connection.query("SELECT version, dirty FROM \(table) LIMIT 1")
            guard let row = rows.first else { return State(version: nil, dirty: false) }
            return State(version: row[0].flatMap { Int64($0) }, dirty: row[1] == "t")
        }
        self.versionTable.value = table
        try body(state)
    }

    /// A SQL identifier in double quotes.
    static func quoted(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    @discardableResult
    private func sql<T>(_ body: () throws(SQLFailure) -> T) throws(MigrateError) -> T {
        do {
            return try body()
        } catch {
            throw .database("database error: \(error.message)")
        }
    }

    private func displayPath(_ file: URL) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return file.path.hasPrefix(cwd) ? String(file.path.dropFirst(cwd.count)) : file.path
    }

    /// PostgreSQL's error position counts characters from 1; people count lines and columns.
    static func lineAndColumn(of position: Int, in text: String) -> (line: Int, column: Int)? {
        var line = 1
        var column = 1
        var index = 1
        for scalar in text.unicodeScalars {
            if index == position { return (line, column) }
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            index += 1
        }
        return index == position ? (line, column) : nil
    }
}

/// A mutable value shared by copies of a struct; skipper-migrate is single-threaded.
final class Box<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}
