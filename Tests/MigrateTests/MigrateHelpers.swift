import Foundation
import TestSupport

/// Runs the real skipper-migrate against `url` with the given migrations folder.
func migrate(_ arguments: [String], url: String?, path: URL = Paths.migrations, environment: [String: String] = [:]) async throws -> ProcessResult {
    var args = arguments + ["--path", path.path]
    if let url { args += ["--database-url", url] }
    var env = ProcessInfo.processInfo.environment
    env["DATABASE_URL"] = nil
    for (name, value) in environment { env[name] = value }
    return try await runProcess(Executables.path("skipper-migrate"), args, environment: env)
}

/// A copy of migrations/ in a temporary folder that a test may change.
func copyOfMigrations() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("skipper-migrations-\(UUID().uuidString)")
    try FileManager.default.copyItem(at: Paths.migrations, to: dir)
    return dir
}

func write(_ text: String, to folder: URL, _ name: String) throws {
    try Data(text.utf8).write(to: folder.appendingPathComponent(name))
}

/// `pg_dump --schema-only` of a database, for comparing schemas.
func schemaDump(_ url: String) async throws -> String {
    let candidates = ["/usr/lib/postgresql/15/bin/pg_dump", "/usr/bin/pg_dump"]
    let pgDump = candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "pg_dump"
    let result = try await runProcess(pgDump, ["--schema-only", "--no-owner", "--no-privileges", url])
    guard result.status == 0 else { throw TestSetupError("pg_dump failed: \(result.stderr)") }
    // pg_dump writes a random \\restrict key on each run; it is not part of the schema. The cutover to daily
    // partitions is the moment of migrating: two databases migrated a moment apart differ there only.
    let timestamp = try Regex(#"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00'"#)
    return result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
        .map { $0.replacing(timestamp, with: "'<time>'") }
        .joined(separator: "\n")
}
