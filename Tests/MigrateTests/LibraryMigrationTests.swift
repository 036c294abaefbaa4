import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Testing
import TestSupport

@testable import Skipper

/// Migrations were not part of the library: an application could not apply them from Swift, and the CLI needed a
/// migrations folder. SkipperMigrations applies the migrations built into the library, as skipper-migrate does.
@Suite struct LibraryMigrationTests {
    let logger = Logger(label: "test")

    /// The built-in migrations are the files of migrations/ (scripts/embed-migrations.sh writes them).
    @Test func theBuiltInMigrationsAreTheFiles() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Paths.migrations.path).filter { $0.hasSuffix(".sql") }
        #expect(files.count == EmbeddedMigrations.all.count * 2, "run make embed-migrations")
        for migration in EmbeddedMigrations.all {
            for (suffix, text) in [("up", migration.up), ("down", migration.down)] {
                let file = Paths.migrations.appendingPathComponent("\(migration.label).\(suffix).sql")
                let contents = try String(contentsOf: file, encoding: .utf8)
                #expect(contents == text + "\n", "\(file.lastPathComponent) differs from the built-in copy: run make embed-migrations")
            }
        }
        #expect(SkipperMigrations.latestVersion == SchemaVersion.expected)
    }

    /// Statements are sent one at a time: a semicolon ends one only outside quotes, comments and $$ bodies.
    @Test func scriptsSplitOnlyBetweenStatements() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x text DEFAULT 'a;b', "we;ird" int);
            /* block; /* nested; */ still comment; */
            INSERT INTO a VALUES (E'it\\'s;', 1);
            DO $$ BEGIN PERFORM 1; RAISE NOTICE 'x;y'; END $$;
            CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;
            PREPARE p AS SELECT $1::int;
            -- trailing comment only
            """
        let statements = SQLScript.statements(script)
        #expect(statements.count == 5, "\(statements)")
        #expect(statements[0].hasSuffix(#"CREATE TABLE a (x text DEFAULT 'a;b', "we;ird" int)"#))
        #expect(statements[1].hasSuffix(#"INSERT INTO a VALUES (E'it\'s;', 1)"#))
        #expect(statements[2] == "DO $$ BEGIN PERFORM 1; RAISE NOTICE 'x;y'; END $$")
        #expect(statements[3] == "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$")
        #expect(statements[4] == "PREPARE p AS SELECT $1::int")
    }

    /// The same schema as skipper-migrate makes, the same version table; applied twice at once, it migrates once
    /// (the advisory lock golang-migrate and skipper-migrate take), and a dirty schema is refused.
    @Test func theLibraryMigratesAsTheCLIDoes() async throws {
        try await withTestDatabase(migrated: false) { byLibrary in
            try await withTestDatabase(migrated: false) { byCLI in
                let cli = try await runProcess(
                    Executables.path("skipper-migrate"), ["up", "--path", Paths.migrations.path, "--database-url", byCLI.url])
                #expect(cli.status == 0, "\(cli.stderr)")
                let versions = try await byLibrary.withClient(maxConnections: 4) { client in
                    async let a = SkipperMigrations(postgres: client, logger: self.logger).apply()
                    async let b = SkipperMigrations(postgres: client, logger: self.logger).apply()
                    return try await [a, b]
                }
                #expect(versions == [SchemaVersion.expected, SchemaVersion.expected])
                #expect(try await Self.fingerprint(byLibrary) == (try await Self.fingerprint(byCLI)))
                #expect(try await byLibrary.scalar("SELECT version || ':' || dirty FROM skipper.schema_migrations") == "\(SchemaVersion.expected):false")
                // Nothing left to do, then a dirty schema stops it.
                try await byLibrary.withClient(maxConnections: 2) { client in
                    #expect(try await SkipperMigrations(postgres: client, logger: self.logger).apply() == SchemaVersion.expected)
                    try await byLibrary.query("UPDATE skipper.schema_migrations SET dirty = true")
                    await #expect(throws: MigrationError.dirty(version: SchemaVersion.expected)) {
                        try await SkipperMigrations(postgres: client, logger: self.logger).apply()
                    }
                }
            }
        }
    }

    /// As a Service beside a runner in one ServiceGroup on an empty database: the runner starts once the schema is
    /// in place (without the wait it refused the database).
    @Test func aRunnerStartsOnceTheMigrationsBesideItAreApplied() async throws {
        try await withTestDatabase(migrated: false) { db in
            let postgres = PostgresClient(configuration: db.config.clientConfiguration(maxConnections: 16, applicationName: "app"), backgroundLogger: self.logger)
            let control = PostgresClient(configuration: db.config.clientConfiguration(maxConnections: 2, applicationName: "app-control"), backgroundLogger: self.logger)
            let migrations = SkipperMigrations(postgres: postgres, logger: self.logger)
            let runner = try JobRunner(
                postgres: postgres, control: control, config: RunnerConfig(), handlers: BuiltIn.handlers, migrations: migrations, logger: self.logger)
            let group = ServiceGroup(configuration: .init(services: [postgres, control, migrations, runner], logger: self.logger))
            let running = Task { try await group.run() }
            #expect(try await eventually(timeout: .seconds(30)) {
                (try? await db.scalar("SELECT count(*) FROM skipper.runners")) == "1"
            })
            await group.triggerGracefulShutdown()
            try await running.value
        }
    }

    /// Tables, columns, indexes, constraints and functions of the skipper and public schemas.
    static func fingerprint(_ db: TestDatabase) async throws -> String? {
        try await db.scalar(
            """
            SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
              SELECT table_schema || '.' || table_name || '.' || column_name || ':' || data_type || ':' || coalesce(column_default, '') AS x
              FROM information_schema.columns WHERE table_schema IN ('skipper', 'public')
              UNION ALL SELECT schemaname || ':' || indexdef FROM pg_indexes WHERE schemaname IN ('skipper', 'public')
              -- The cutover constraint names the moment of the migration: compared without it.
              UNION ALL SELECT conrelid::regclass || ':' || regexp_replace(pg_get_constraintdef(oid), '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.+]+', 'T', 'g')
                        FROM pg_constraint
                        WHERE connamespace IN ('skipper'::regnamespace, 'public'::regnamespace)
              UNION ALL SELECT p.oid::regprocedure || ':' || md5(p.prosrc) FROM pg_proc p
                        WHERE p.pronamespace IN ('skipper'::regnamespace, 'public'::regnamespace)
            ) f
            """)
    }
}
