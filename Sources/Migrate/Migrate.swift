import ArgumentParser
import Foundation

/// skipper-migrate: applies migrations/ up and down, golang-migrate compatible.
@main
struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skipper-migrate",
        abstract: "Apply Skipper's SQL migrations up and down (golang-migrate compatible).",
        discussion: """
            Files are NNNNNN_name.up.sql / NNNNNN_name.down.sql; each runs in its own transaction.
            The version is kept in schema_migrations(version, dirty), as golang-migrate keeps it.
            """,
        subcommands: [Up.self, Down.self, Goto.self, Force.self, Status.self, Create.self]
    )

    /// Parses, runs, and turns every failure into one line on stderr and a non-zero exit.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let commands = Self.configuration.subcommands.map { $0._commandName }
        if let first = arguments.first, !first.hasPrefix("-"), !commands.contains(first), first != "help" {
            Self.fail("unknown command '\(first)' (commands: \(commands.joined(separator: ", ")))", code: 64)
        }
        do {
            var command = try Self.parseAsRoot()
            try command.run()
        } catch let error as MigrateError {
            Self.fail(error.description, code: 1)
        } catch {
            let code = Self.exitCode(for: error)
            if code == .success {
                // --help and --version are not failures.
                print(Self.fullMessage(for: error))
                Foundation.exit(0)
            }
            Self.fail(Self.message(for: error), code: code.rawValue)
        }
    }

    private static func fail(_ message: String, code: Int32) -> Never {
        let line = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("skipper-migrate: \(line)\n".utf8))
        Foundation.exit(code)
    }
}
