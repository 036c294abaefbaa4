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
        var metricsPort: Int?
        let environment = ProcessInfo.processInfo.environment
        do {
            config = try SkipperConfig()
            runnerConfig = try RunnerConfig.fromEnvironment()
            if let port = environment["METRICS_PORT"], !port.isEmpty { metricsPort = try ConfigError.port(port, name: "METRICS_PORT") }
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
        config.logFormat.bootstrap(level: config.logLevel)
        let logger = Logger(label: "skipper.runner")
        // Before the runner makes its instruments, so they report to Prometheus.
        let metrics = metricsPort.map { port in
            MetricsEndpoint(port: port, host: environment["METRICS_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1", logger: logger)
        }
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
        var services: [any Service] = [postgres, control]
        if let metrics { services.append(metrics) }
        services.append(runner)
        var group = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
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
