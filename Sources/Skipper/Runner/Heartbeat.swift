import Foundation
import Logging
import ServiceLifecycle

/// Checks the schema, registers the runner in `skipper.runners`, opens the start gate, and renews the row every
/// heartbeat interval: the lease of every job the runner holds. Removes the row on shutdown.
struct Heartbeat: Service {
    let store: JobStore
    let record: RunnerRecord
    let interval: Duration
    let gate: StartGate
    let logger: Logger

    func run() async throws {
        let status = try await SchemaVersion.check(self.store.client, logger: self.logger)
        guard status.isUsable else {
            self.logger.critical("database not usable", metadata: ["schema": "\(status)"])
            throw SchemaNotUsable(status: status)
        }
        try await self.registerUntilDone()
        guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return }
        self.gate.open()
        self.logger.info(
            "runner started",
            metadata: [
                "runner.id": "\(self.record.id)", "queues": "\(self.record.queues.joined(separator: ","))",
                "workers": "\(self.record.concurrency)", "kinds": "\(self.record.kinds.joined(separator: ","))",
            ])
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                if Task.isCancelled { return }
                do {
                    if try await !self.store.heartbeat(runnerID: self.record.id) {
                        self.logger.warning("runner row was removed (presumed dead); registering again")
                        try await self.store.register(self.record)
                    }
                } catch {
                    self.logger.warning("heartbeat failed", metadata: ["error": "\(describe(error))"])
                }
            }
        }
        do {
            try await self.store.unregister(runnerID: self.record.id)
            self.logger.info("runner stopped", metadata: ["runner.id": "\(self.record.id)"])
        } catch {
            self.logger.warning("could not remove the runner row", metadata: ["error": "\(describe(error))"])
        }
    }

    private func registerUntilDone() async throws {
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await self.store.register(self.record)
                return
            } catch {
                failures += 1
                let delay = Duration.milliseconds(min(200 * (1 << min(failures, 5)), 5000))
                self.logger.warning("cannot register the runner; retrying", metadata: ["error": "\(describe(error))"])
                try? await Task.sleep(for: delay)
            }
        }
    }
}

/// The database is not at a schema this build can use.
public struct SchemaNotUsable: Error, CustomStringConvertible {
    /// What the check found.
    public let status: SchemaVersion.Status
    public var description: String { "\(self.status)" }
}

/// Rescues jobs of dead runners and prunes old finished jobs, on one runner at a time (a transaction-scoped
/// advisory lock per round, so it also works behind a transaction-pooling PgBouncer).
struct Maintenance: Service {
    let store: JobStore
    let config: RunnerConfig
    let executor: Executor
    let logger: Logger

    func run() async throws {
        await self.executor.gate.wait()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Jitter keeps runners started together from contending every round.
                let jitter = Double.random(in: 0.8...1.2)
                try? await Task.sleep(for: self.config.maintenanceInterval * jitter)
                if Task.isCancelled { return }
                await self.round()
            }
        }
    }

    func round() async {
        do {
            let rescueAfter = self.config.rescueAfter
            let retention = self.config.retention
            let store = self.store
            let result = try await store.asLeader { connection in
                let rescued = try await store.rescue(after: rescueAfter, on: connection)
                let pruned = try await store.prune(retention: retention, limit: 5000, on: connection)
                return (rescued, pruned)
            }
            guard let (rescued, pruned) = result else { return }
            if !rescued.isEmpty {
                self.logger.warning(
                    "rescued jobs of runners that stopped heartbeating",
                    metadata: ["jobs": "\(rescued.count)", "job.ids": "\(rescued.prefix(20).map(\.id))"])
                self.executor.wake.signal()
            }
            if pruned > 0 { self.logger.info("pruned finished jobs", metadata: ["jobs": "\(pruned)"]) }
        } catch {
            self.logger.warning("maintenance failed", metadata: ["error": "\(describe(error))"])
        }
    }
}

/// Writes the progress handlers report, for all jobs at once, at most every progress interval.
struct ProgressFlusher: Service {
    let store: JobStore
    let board: ProgressBoard
    let runnerID: String
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                let changed = self.board.takeDirty()
                guard !changed.isEmpty else { continue }
                do {
                    try await self.store.writeProgress(changed, runnerID: self.runnerID)
                } catch {
                    self.logger.warning("progress write failed", metadata: ["error": "\(describe(error))"])
                }
            }
        }
    }
}
