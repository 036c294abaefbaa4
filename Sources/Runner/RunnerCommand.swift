import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Skipper

/// skipper-runner: claims jobs from skipper.jobs and runs them.
@main
struct RunnerCommand {
    static func main() async throws {
        let config: SkipperConfig
        do {
            config = try SkipperConfig()
        } catch {
            FileHandle.standardError.write(Data("skipper-runner: \(error)\n".utf8))
            exit(1)
        }
        var logger = Logger(label: "skipper.runner")
        logger.logLevel = config.logLevel
        let postgres = PostgresClient(
            configuration: config.database.clientConfiguration(maxConnections: config.poolSize, applicationName: "skipper-runner"),
            backgroundLogger: logger
        )
        let startup = SchemaGate(client: postgres, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [postgres, startup], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}

/// Checks the schema version at start and then waits for shutdown.
struct SchemaGate: Service {
    let client: PostgresClient
    let logger: Logger

    func run() async throws {
        let status = try await SchemaVersion.check(self.client, logger: self.logger)
        guard status.isUsable else {
            self.logger.critical("database not usable", metadata: ["schema": "\(status)"])
            throw SchemaNotUsable(status: status)
        }
        self.logger.info("runner connected", metadata: ["schema": "\(status)"])
        try await gracefulShutdown()
    }
}

struct SchemaNotUsable: Error, CustomStringConvertible {
    let status: SchemaVersion.Status
    var description: String { "\(self.status)" }
}
