import ArgumentParser
import Foundation
import Skipper

/// The options every subcommand shares: where the migrations are and which database to move.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Folder of NNNNNN_name.up.sql / .down.sql files (default: the migrations built into this binary).")
    var path: String?

    @Option(help: "postgres://user:password@host:port/database (default: DATABASE_URL, else the DB_* variables).")
    var databaseURL: String?

    /// Reads and checks the folder first, so bad input never touches the database.
    /// `check` sees the folder before any connection is made, to refuse a version the folder does not have.
    func migrator(check: (MigrationSource) throws(MigrateError) -> Void = { _ in }) throws(MigrateError) -> Migrator {
        let source: MigrationSource
        if let path = self.path {
            source = try MigrationSource(path: path)
        } else {
            source = try MigrationSource.builtIn()
        }
        try check(source)
        let database: DatabaseConfig
        do {
            if let url = self.databaseURL {
                database = try DatabaseConfig(url: url)
            } else {
                database = try DatabaseConfig(environment: ProcessInfo.processInfo.environment)
            }
        } catch {
            throw .usage(error.description)
        }
        // The migration lock is a session advisory lock (as golang-migrate's), which a transaction pooler cannot keep.
        if (try? DatabaseConfig.pooled(ProcessInfo.processInfo.environment["DB_POOLER"])) == true {
            throw .usage("DB_POOLER=pgbouncer: run migrations on a direct connection to PostgreSQL (its lock is a session's), not through the pooler")
        }
        let connection = try PQConnection(database)
        return Migrator(source: source, connection: connection, database: database) { print($0) }
    }
}
