import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// A runner: the small services that claim, run, finish, listen, heartbeat and maintain, in the order a
/// ServiceGroup must hold them (it stops them in reverse: the executor first, the heartbeat last).
///
/// ```swift
/// let runner = JobRunner(postgres: postgres, config: config, handlers: [AnyJobHandler(MyHandler())], logger: logger)
/// let group = ServiceGroup(configuration: .init(services: [postgres] + runner.services, ...))
/// ```
public struct JobRunner: Sendable {
    /// This process's id in `skipper.runners` and `skipper.jobs.runner_id`: host, pid and a random suffix.
    public let id: String
    /// The services, in ServiceGroup order (after the Postgres client).
    public let services: [any Service]

    /// Wires a runner for `handlers`; two handlers of one kind are a programming error.
    public init(postgres: PostgresClient, config: RunnerConfig, handlers: [AnyJobHandler], logger: Logger) {
        let host = ProcessInfo.processInfo.hostName
        let pid = ProcessInfo.processInfo.processIdentifier
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        self.id = "\(host)-\(pid)-\(suffix)"
        var logger = logger
        logger[metadataKey: "runner.id"] = "\(self.id)"
        var byKind: [String: AnyJobHandler] = [:]
        for handler in handlers {
            precondition(byKind[handler.kind] == nil, "two handlers for kind \(handler.kind)")
            byKind[handler.kind] = handler
        }
        let store = JobStore(client: postgres, logger: logger)
        let gate = StartGate()
        let board = ProgressBoard()
        let completer = Completer(store: store, runnerID: self.id, logger: logger)
        let executor = Executor(
            store: store, handlers: byKind, config: config, runnerID: self.id, logger: logger, completer: completer,
            board: board, gate: gate)
        let sweeper = CancelSweeper(store: store, executor: executor, interval: config.cancelSweep, logger: logger)
        let record = RunnerRecord(
            id: self.id, host: host, pid: pid, queues: config.queues, kinds: byKind.keys.sorted(),
            concurrency: Int32(config.workers))
        var services: [any Service] = [
            SignalGuard(logger: logger),
            Heartbeat(store: store, record: record, interval: config.heartbeatInterval, gate: gate, logger: logger),
            completer,
            ProgressFlusher(store: store, board: board, runnerID: self.id, interval: config.progressInterval, logger: logger),
            Maintenance(store: store, config: config, executor: executor, logger: logger),
            sweeper,
        ]
        if !config.pollOnly {
            services.append(
                Listener(client: postgres, executor: executor, sweeper: sweeper, queues: Set(config.queues), logger: logger))
        }
        services.append(executor)
        self.services = services
    }
}
