import Logging
import ServiceLifecycle

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
