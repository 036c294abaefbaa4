import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// A runner, as one `Service`: it runs the small services that claim, run, finish, listen, heartbeat and maintain
/// in a ServiceGroup of its own, in the order that group must hold them (it stops them in reverse: the executor
/// first, the heartbeat last). Put it in your ServiceGroup after the Postgres client; graceful shutdown of your
/// group reaches it, and the process's signals stay yours.
///
/// ```swift
/// let runner = JobRunner(postgres: postgres, config: config, handlers: [AnyJobHandler(MyHandler())], logger: logger)
/// let group = ServiceGroup(configuration: .init(services: [postgres, runner], gracefulShutdownSignals: [.sigterm], logger: logger))
/// ```
public final class JobRunner: Service, Sendable {
    /// This process's id in `skipper.runners` and `skipper.jobs.runner_id`: host, pid and a random suffix.
    public let id: String
    /// The runner's own services, in ServiceGroup order.
    let services: [any Service]
    let logger: Logger

    /// Wires a runner for `handlers` (and the periodic jobs its program declares, written to `skipper.schedules` when
    /// it starts; every runner makes due ticks, each once); two handlers of one kind, no handler at all, or a setting out of its bounds
    /// (``RunnerConfig/validate()``) are a ``ConfigError``. With `migrations` (a ``SkipperMigrations`` in the same ServiceGroup), the runner
    /// starts once they are applied. `control` is a small pool of
    /// the runner's own (two connections are plenty) for its heartbeat, which must land whatever the handlers do
    /// with `postgres`; without it the heartbeat shares `postgres`, and handlers that hold every connection can
    /// make the runner lose its lease (it then stops its jobs rather than let them run twice). `listen`, behind a
    /// transaction-pooling PgBouncer (``RunnerConfig/pooled``), is a client connected to PostgreSQL directly for
    /// LISTEN alone (one connection); without it such a runner polls.
    public init(
        postgres: PostgresClient, control: PostgresClient? = nil, listen: PostgresClient? = nil, config: RunnerConfig,
        handlers: [AnyJobHandler], periodicJobs: [PeriodicJob] = [], migrations: SkipperMigrations? = nil, logger: Logger
    ) throws(ConfigError) {
        guard !handlers.isEmpty else { throw ConfigError(name: "handlers", message: "a runner needs at least one handler") }
        if let twice = Dictionary(grouping: periodicJobs, by: \.name).first(where: { $0.value.count > 1 }) {
            throw ConfigError(name: "periodicJobs", message: "two periodic jobs named \"\(twice.key)\"")
        }
        try config.validate()
        let host = ProcessInfo.processInfo.hostName
        let pid = ProcessInfo.processInfo.processIdentifier
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let id = "\(host)-\(pid)-\(suffix)"
        self.id = id
        var logger = logger
        logger[metadataKey: "runner.id"] = "\(id)"
        var byKind: [String: AnyJobHandler] = [:]
        for handler in handlers {
            guard byKind[handler.kind] == nil else {
                throw ConfigError(name: "handlers", message: "two handlers for kind \"\(handler.kind)\"")
            }
            byKind[handler.kind] = handler
        }
        let store = JobStore(client: postgres, logger: logger, prepared: !config.pollOnly, pooled: config.pooled)
        let controlStore = JobStore(client: control ?? postgres, logger: logger, prepared: store.prepared, pooled: config.pooled)
        let lease = RunnerLease(length: config.rescueAfter)
        let gate = StartGate()
        let board = ProgressBoard()
        let wake = WakeSignal()
        let metrics = RunnerMetrics(kinds: byKind.keys.sorted())
        let completer = Completer(store: store, runnerID: id, logger: logger, wakeClaims: wake, metrics: metrics)
        let executor = Executor(
            store: store, handlers: byKind, config: config, runnerID: id, logger: logger, completer: completer,
            board: board, gate: gate, lease: lease, control: control ?? postgres, metrics: metrics, wake: wake)
        let sweeper = CancelSweeper(store: store, executor: executor, interval: config.cancelSweep, logger: logger)
        let record = RunnerRecord(
            id: id, host: host, pid: pid, queues: config.queues, kinds: byKind.keys.sorted(),
            concurrency: Int32(config.workers), lease: config.rescueAfter)
        self.logger = logger
        var services: [any Service] = [
            Heartbeat(
                store: controlStore, record: record, interval: config.heartbeatInterval, lease: lease, gate: gate, migrations: migrations,
                stillRunning: { executor.runningClaims.count }, logger: logger),
            completer,
            ProgressFlusher(store: store, board: board, runnerID: id, interval: config.progressInterval, logger: logger),
            Maintenance(store: store, config: config, gate: gate, wakeClaims: { executor.wake.signal() }, logger: logger),
            sweeper,
            Scheduler(store: store, declared: periodicJobs, gate: gate, logger: logger),
        ]
        // Behind a pooler, LISTEN only on a direct connection: a LISTEN through it would hold whichever server
        // session it ran on, and the notifications would reach whoever borrows that session next.
        if !config.pollOnly, let listenClient = config.pooled ? listen : postgres {
            services.append(
                Listener(client: listenClient, executor: executor, sweeper: sweeper, queues: Set(config.queues), logger: logger))
        }
        services.append(executor)
        self.services = services
    }

    /// Runs the runner's services until graceful shutdown of the enclosing group (or an error) ends them.
    public func run() async throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: self.services, logger: self.logger))
        try await group.run()
    }
}
