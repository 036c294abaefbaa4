import Foundation
import Skipper

/// One version's pair of files: `NNNNNN_name.up.sql` and `NNNNNN_name.down.sql`.
struct Migration: Equatable {
    let version: Int64
    let name: String
    let upFile: URL
    let downFile: URL

    /// `000001_skipper_queue`, as people read it in output.
    var label: String { self.upFile.lastPathComponent.replacingOccurrences(of: ".up.sql", with: "") }
}

/// The migrations folder, read and checked in full before anything touches the database.
struct MigrationSource {
    let folder: URL
    /// Ordered by version, oldest first.
    let migrations: [Migration]
    /// Where the folder's history is kept: `skipper.schema_migrations` unless a `VERSION_TABLE` file in the folder
    /// names another `schema.table` (an application's set, such as the demo shop's `public.schema_migrations`).
    let versionTable: (schema: String, table: String)

    /// Reads `path`; every `.sql` file in it must be half of a well-named pair.
    init(path: String) throws(MigrateError) {
        self.folder = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: self.folder.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { throw .source("migrations folder \(path) does not exist") }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: self.folder.path)
        } catch {
            throw .source("cannot read migrations folder \(path): \(error.localizedDescription)")
        }

        struct Half { var name: String; var file: URL }
        var ups: [Int64: Half] = [:]
        var downs: [Int64: Half] = [:]
        for fileName in names.sorted() where fileName.hasSuffix(".sql") && !fileName.hasPrefix(".") {
            guard let parsed = Self.parse(fileName) else {
                throw .source(
                    "\(path)/\(fileName): malformed migration file name (want NNNNNN_name.up.sql or NNNNNN_name.down.sql)"
                )
            }
            let file = self.folder.appendingPathComponent(fileName)
            if parsed.up {
                if let other = ups[parsed.version] {
                    throw .source("\(path): version \(parsed.version) has two up files: \(other.file.lastPathComponent) and \(fileName)")
                }
                ups[parsed.version] = Half(name: parsed.name, file: file)
            } else {
                if let other = downs[parsed.version] {
                    throw .source("\(path): version \(parsed.version) has two down files: \(other.file.lastPathComponent) and \(fileName)")
                }
                downs[parsed.version] = Half(name: parsed.name, file: file)
            }
        }
        var migrations: [Migration] = []
        for version in Set(ups.keys).union(downs.keys).sorted() {
            switch (ups[version], downs[version]) {
            case let (up?, down?):
                guard up.name == down.name else {
                    throw .source("\(path): version \(version) pairs \(up.file.lastPathComponent) with \(down.file.lastPathComponent); the names must match")
                }
                migrations.append(Migration(version: version, name: up.name, upFile: up.file, downFile: down.file))
            case let (up?, nil):
                throw .source("\(path)/\(up.file.lastPathComponent) has no down file (\(up.file.lastPathComponent.replacingOccurrences(of: ".up.sql", with: ".down.sql")))")
            case let (nil, down?):
                throw .source("\(path)/\(down.file.lastPathComponent) has no up file (\(down.file.lastPathComponent.replacingOccurrences(of: ".down.sql", with: ".up.sql")))")
            case (nil, nil):
                continue
            }
        }
        self.migrations = migrations
        let marker = self.folder.appendingPathComponent("VERSION_TABLE")
        if let text = try? String(contentsOf: marker, encoding: .utf8) {
            let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } }) else {
                throw .source("\(marker.path) must name the version table as schema.table, not '\(text.trimmingCharacters(in: .whitespacesAndNewlines))'")
            }
            self.versionTable = (String(parts[0]), String(parts[1]))
        } else {
            self.versionTable = (SkipperHistory.schema, SkipperHistory.table)
        }
    }

    /// The migrations built into this binary (the same as migrations/ when it was built), written once to a folder
    /// named by their content under the temporary directory, so skipper-migrate needs no migrations folder of its
    /// own and works from any directory.
    static func builtIn() throws(MigrateError) -> MigrationSource {
        let files = BuiltInMigrations.files
        let key = SchemaLock.crc32(Array(files.map { $0.name + "\u{0}" + $0.text }.joined().utf8))
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("skipper-migrations-\(SkipperMigrations.latestVersion)-\(String(key, radix: 16))", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (name, text) in files {
                let file = folder.appendingPathComponent(name)
                if (try? String(contentsOf: file, encoding: .utf8)) != text {
                    try Data(text.utf8).write(to: file, options: .atomic)
                }
            }
        } catch {
            throw .source("cannot write the built-in migrations to \(folder.path): \(error.localizedDescription)")
        }
        return try MigrationSource(path: folder.path)
    }

    /// The migration with this version, if the folder has it.
    func migration(_ version: Int64) -> Migration? {
        self.migrations.first { $0.version == version }
    }

    /// `000012_add_index.up.sql` → (12, "add_index", up). Names are letters, digits, `_` and `-`.
    static func parse(_ fileName: String) -> (version: Int64, name: String, up: Bool)? {
        let up: Bool
        let stem: Substring
        if fileName.hasSuffix(".up.sql") {
            up = true
            stem = fileName.dropLast(".up.sql".count)
        } else if fileName.hasSuffix(".down.sql") {
            up = false
            stem = fileName.dropLast(".down.sql".count)
        } else {
            return nil
        }
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore]
        let name = stem[stem.index(after: underscore)...]
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
            let version = Int64(digits), version > 0,
            !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        else { return nil }
        return (version, String(name), up)
    }
}
