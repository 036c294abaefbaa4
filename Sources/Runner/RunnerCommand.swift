import Foundation
import Logging
import OTel
import PostgresNIO
import ServiceLifecycle
import Shop
import Skipper
import Tracing

/// skipper-runner: claims jobs from skipper.jobs and runs them; run as many as you like.
@main
struct RunnerCommand {
    static func main() async throws {
        ProcessSetup.prepare()
        let config: SkipperConfig
        let runnerConfig: RunnerConfig
        var periodicJobs: [PeriodicJob] = []
        var metricsPort: Int?
        let environment = ProcessInfo.processInfo.environment
        do {
            config = try SkipperConfig()
            runnerConfig = try RunnerConfig.fromEnvironment()
            if let port = environment["METRICS_PORT"], !port.isEmpty { metricsPort = try ConfigError.port(port, name: "METRICS_PORT") }
            _ = try Self.exportsTraces(environment)
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
        // Before the runner is made, which asks once whether a tracer is there to make spans for.
        let tracing: (any Service)?
        do {
            tracing = try Self.bootstrapTracing(environment: environment, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("skipper-runner: OTEL_TRACES_EXPORTER=otlp, but the exporter cannot start: \(error)\n".utf8))
            exit(1)
        }
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
        // Behind a transaction-pooling PgBouncer: LISTEN over a direct connection of its own, or polling.
        let listen = runnerConfig.pooled && !runnerConfig.pollOnly
            ? config.listenDatabase.map {
                PostgresClient(configuration: $0.clientConfiguration(maxConnections: 1, applicationName: "skipper-runner-listen"), backgroundLogger: logger)
            }
            : nil
        let mode = config.database.connectionMode(
            listen: listen == nil ? nil : config.listenDatabase, pollInterval: runnerConfig.pollInterval, pollOnly: runnerConfig.pollOnly)
        logger.info("database", metadata: ["connection": "\(mode)"])
        if config.listenDatabase != nil, listen == nil {
            logger.warning("LISTEN_DATABASE_URL is ignored: it serves a runner behind PgBouncer (DB_POOLER=pgbouncer) that does not poll only")
        }
        let runner: JobRunner
        do {
            runner = try JobRunner(
                postgres: postgres, control: control, listen: listen, config: runnerConfig,
                handlers: BuiltIn.handlers + Shop.handlers(batchSize: runnerConfig.batchSize), periodicJobs: periodicJobs, logger: logger)
        } catch {
            logger.critical("cannot start the runner", metadata: ["error": "\(error)"])
            exit(1)
        }
        // Stopped in the reverse order: the runner first, so its last jobs' spans are exported before the exporter stops.
        var services: [any Service] = [postgres, control]
        if let listen { services.append(listen) }
        if let tracing { services.append(tracing) }
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

    /// `OTEL_TRACES_EXPORTER=otlp`: each job's execution becomes a span in the trace it was submitted in, exported
    /// by swift-otel over OTLP/HTTP, configured by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf` or `http/json`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
    /// `OTEL_BSP_SCHEDULE_DELAY`...). Only traces: logs and metrics have their own (`LOG_FORMAT`, `METRICS_PORT`).
    /// Unset (or `none`), no tracer is bootstrapped and no span is made; the log lines carry `trace_id` either way.
    static func bootstrapTracing(environment: [String: String], logger: Logger) throws -> (any Service)? {
        guard try Self.exportsTraces(environment) else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "skipper-runner"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        // The exporter's own messages go through the process's logging (LOG_FORMAT=json keeps every line JSON), from
        // warnings up unless OTEL_LOG_LEVEL says otherwise: the configuration it read is not worth a line per variable.
        // Its lines about the environment quote the values read, headers (credentials) among them: never those.
        let otelLogger = Logger(label: "skipper.otel")
        configuration.diagnosticLogger = .custom(Logger(label: "skipper.otel") { _ in RedactingLogHandler(otelLogger.handler, dropping: ["environment_value"]) })
        configuration.diagnosticLogLevel = .warning
        // A collector that does not answer holds the exit (after the jobs are done) at most this long per batch, not
        // the 30 s of the defaults (OTEL_BSP_EXPORT_TIMEOUT and OTEL_EXPORTER_OTLP_TIMEOUT still say otherwise).
        configuration.traces.batchSpanProcessor.exportTimeout = .seconds(5)
        configuration.traces.otlpExporter.timeout = .seconds(5)
        // The trace a job carries is W3C trace context, whatever else the environment propagates; swift-otel stops
        // the process on the propagators it lacks (baggage among them, which OTel's own default lists).
        configuration.propagators = [.traceContext]
        if let propagators = environment["OTEL_PROPAGATORS"], propagators != "tracecontext" {
            logger.notice("OTEL_PROPAGATORS is ignored: a job's trace travels as W3C trace context", metadata: ["OTEL_PROPAGATORS": "\(propagators)"])
            unsetenv("OTEL_PROPAGATORS")
        }
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        logger.info(
            "tracing: each job's execution is a span, exported over OTLP",
            metadata: ["endpoint": "\(environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? "default")"])
        return service
    }

    /// Whether `OTEL_TRACES_EXPORTER` asks for spans (`otlp`; unset, empty or `none`, or `OTEL_SDK_DISABLED=true`:
    /// no), refusing at start what this build cannot do, where swift-otel would stop the process with a crash or
    /// hang it: other exporters, OTLP over gRPC, the Jaeger-remote and X-Ray samplers, batch sizes, queue sizes,
    /// delays or timeouts below 1.
    static func exportsTraces(_ environment: [String: String]) throws -> Bool {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let exporter = value("OTEL_TRACES_EXPORTER"), exporter != "none" else { return false }
        guard value("OTEL_SDK_DISABLED")?.lowercased() != "true" else { return false }
        guard exporter == "otlp" else {
            throw ConfigError(name: "OTEL_TRACES_EXPORTER", message: "must be otlp or none, not '\(exporter)'")
        }
        let protocolName = value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") != nil ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL"
        if let protocolValue = value(protocolName), !["http/protobuf", "http/json"].contains(protocolValue) {
            throw ConfigError(name: protocolName, message: "must be http/protobuf or http/json (this build exports OTLP over HTTP only), not '\(protocolValue)'")
        }
        let samplers = ["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"]
        if let sampler = value("OTEL_TRACES_SAMPLER"), !samplers.contains(sampler) {
            throw ConfigError(name: "OTEL_TRACES_SAMPLER", message: "must be one of \(samplers.joined(separator: ", ")), not '\(sampler)'")
        }
        // Sizes (swift-otel reserves the whole queue at start: a billion aborted the process) and times in ms (an hour).
        let ranges: [(String, ClosedRange<Int>)] = [
            ("OTEL_BSP_MAX_QUEUE_SIZE", 1...1_000_000), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1...1_000_000),
            ("OTEL_BSP_SCHEDULE_DELAY", 1...3_600_000), ("OTEL_BSP_EXPORT_TIMEOUT", 1...3_600_000),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", 1...3_600_000), ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 1...3_600_000),
        ]
        for (name, range) in ranges {
            if let number = value(name) { _ = try ConfigError.integer(number, name: name, in: range) }
        }
        // An endpoint or headers the exporter cannot use lose every span, silently: refused here instead. A header's
        // value may be a credential, so the message names the entry, never its text.
        for name in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] {
            if let endpoint = environment[name], endpoint.isEmpty || !Self.isHTTPURL(endpoint) {
                throw ConfigError(name: name, message: "must be an http:// or https:// URL with a host, not '\(endpoint)'")
            }
        }
        for name in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"] {
            if let headers = value(name), let bad = Self.malformedHeader(headers) {
                throw ConfigError(name: name, message: "must be comma-separated name=value pairs (a name of letters, digits and !#$%&'*+-.^_`|~, a value without control characters); entry \(bad) is not")
            }
        }
        return true
    }

    static func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else { return false }
        return scheme == "http" || scheme == "https"
    }

    /// The 1-based position of the first entry of an `OTEL_EXPORTER_OTLP_HEADERS` value that is not `name=value`.
    static func malformedHeader(_ headers: String) -> Int? {
        let token = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~")
        for (index, entry) in headers.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            guard let equals = entry.firstIndex(of: "=") else { return index + 1 }
            let name = entry[..<equals].trimmingCharacters(in: .whitespaces)
            let value = entry[entry.index(after: equals)...]
            if name.isEmpty || !name.allSatisfy(token.contains) || value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                return index + 1
            }
        }
        return nil
    }
}
