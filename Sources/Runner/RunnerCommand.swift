import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Shop
import Skipper

/// skipper-runner: claims jobs from skipper.jobs and runs them; run as many as you like.
@main
struct RunnerCommand {
    static func main() async throws {
        let config: SkipperConfig
        let runnerConfig: RunnerConfig
        var periodicJobs: [PeriodicJob] = []
        do {
            config = try SkipperConfig()
            runnerConfig = try RunnerConfig.fromEnvironment()
            // The shop's nightly settlement of yesterday: NIGHTLY_SETTLEMENT is its cron (UTC), or "off".
            let nightly = ProcessInfo.processInfo.environment["NIGHTLY_SETTLEMENT"] ?? "0 2 * * *"
            if nightly != "off" {
                do {
                    periodicJobs.append(try NightlySettlement.periodicJob(cron: nightly))
                } catch {
                    throw ConfigError(name: "NIGHTLY_SETTLEMENT", message: "must be a cron expression or off: \(error)")
                }
            }
        } catch {
            FileHandle.standardError.write(Data("skipper-runner: \(error)\n".utf8))
            exit(1)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = config.logLevel
            return handler
        }
        let logger = Logger(label: "skipper.runner")
        // Workers, listener, flushers and maintenance each need a connection at times; cap well above WORKERS.
        let postgres = PostgresClient(
            configuration: config.database.clientConfiguration(
                maxConnections: max(config.poolSize, runnerConfig.workers + 6), applicationName: "skipper-runner"),
            backgroundLogger: logger)
        // The heartbeat's own connections, which handlers never borrow; a heartbeat stuck longer than its interval is
        // ended by the server, and the next one tries again.
        let control = PostgresClient(
            configuration: config.database.clientConfiguration(
                maxConnections: 2, applicationName: "skipper-runner-control", statementTimeout: runnerConfig.heartbeatInterval),
            backgroundLogger: logger)
        let runner: JobRunner
        do {
            runner = try JobRunner(
                postgres: postgres, control: control, config: runnerConfig,
                handlers: BuiltIn.handlers + Shop.handlers(batchSize: runnerConfig.batchSize), periodicJobs: periodicJobs, logger: logger)
        } catch {
            logger.critical("cannot start the runner", metadata: ["error": "\(error)"])
            exit(1)
        }
        var group = ServiceGroupConfiguration(
            services: [postgres, control, runner], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = runnerConfig.shutdownGrace + .seconds(15)
        // Past the group's own limit (after which it cancels what is left), the process exits regardless: a final
        // write stuck behind a lock held the process for good.
        ShutdownGuard.install(logger: logger, limit: runnerConfig.shutdownGrace + .seconds(30))
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            logger.critical("runner stopped on an error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
