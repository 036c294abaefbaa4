import Foundation
import Logging
import ServiceLifecycle

/// Checks the schema, registers the runner in `skipper.runners` (with its lease length), opens the start gate, and
/// renews the row every heartbeat interval: the lease of every job the runner holds. Each heartbeat that lands
/// renews ``RunnerLease`` from the moment it was sent. Runs on the runner's control connections, which handlers
/// never borrow, so a starved pool cannot stop it. Removes the row on shutdown.
struct Heartbeat: Service {
    let store: JobStore
    let record: RunnerRecord
    let interval: Duration
    let lease: RunnerLease
    let gate: StartGate
    /// Applied by a service beside this runner: waited for before the schema check.
    let migrations: SkipperMigrations?
    /// Jobs whose tasks have not ended (a handler that ignores cancellation): the row stays while they may run.
    let stillRunning: @Sendable () -> Int
    let logger: Logger

    func run() async throws {
        // Until the runner is registered, graceful shutdown cancels the wait: with the database unreachable from the
        // start, the schema check waits for a connection that never comes, and one signal must still stop the process.
        do {
            try await cancelWhenGracefulShutdown {
                try await self.migrations?.waitUntilApplied()
                let status = try await SchemaVersion.check(self.store.client, logger: self.logger)
                guard status.isUsable else {
                    self.logger.critical("database not usable", metadata: ["schema": "\(status)"])
                    throw SchemaNotUsable(status: status)
                }
                try await self.registerUntilDone()
            }
        } catch where Task.isShuttingDownGracefully && !(error is SchemaNotUsable) {
            self.logger.info("stopped before the runner could start", metadata: ["error": "\(describe(error))"])
            return
        }
        guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return }
        self.gate.open()
        self.logger.info(
            "runner started",
            metadata: [
                "runner.id": "\(self.record.id)", "queues": "\(self.record.queues.joined(separator: ","))",
                "workers": "\(self.record.concurrency)", "kinds": "\(self.record.kinds.joined(separator: ","))",
                "lease": "\(self.lease.length)",
            ])
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                if Task.isCancelled { return }
                let sentAt = ContinuousClock.now
                do {
                    if try await self.store.heartbeat(runnerID: self.record.id) {
                        self.lease.renewed(sentAt: sentAt)
                    } else {
                        self.logger.warning("runner row was removed (presumed dead); registering again")
                        try await self.store.register(self.record)
                        self.lease.renewed(sentAt: sentAt)
                    }
                } catch {
                    // Cancelled at shutdown is not a failure.
                    if !Task.isCancelled { self.logger.warning("heartbeat failed", metadata: ["error": "\(describe(error))"]) }
                }
            }
        }
        // Services stop in reverse order, so the executor has drained. A handler that ignored its cancellation may
        // still run until the process exits: removing the row now would let the leader rescue its job at once, and
        // run it beside it. Left in place, the row ages out like a crashed runner's, after the process is gone.
        let running = self.stillRunning()
        guard running == 0 else {
            self.logger.warning(
                "jobs did not stop when cancelled; leaving the runner row to age out, so they are rescued only after its lease",
                metadata: ["jobs": "\(running)", "lease": "\(self.lease.length)"])
            return
        }
        do {
            // Bounded: with PostgreSQL gone the process must still exit (the row then ages out like a crashed runner's).
            let store = self.store, id = self.record.id
            try await abandoningAfter(.seconds(5)) { try await store.unregister(runnerID: id) }
            self.logger.info("runner stopped", metadata: ["runner.id": "\(self.record.id)"])
        } catch {
            self.logger.warning("could not remove the runner row", metadata: ["error": "\(describe(error))"])
        }
    }

    private func registerUntilDone() async throws {
        var backoff = Backoff(base: .milliseconds(400))
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let sentAt = ContinuousClock.now
            do {
                try await self.store.register(self.record)
                self.lease.renewed(sentAt: sentAt)
                return
            } catch {
                let delay = backoff.next()
                self.logger.warning("cannot register the runner; retrying", metadata: ["error": "\(describe(error))"])
                try? await Task.sleep(for: delay)
            }
        }
    }
}
