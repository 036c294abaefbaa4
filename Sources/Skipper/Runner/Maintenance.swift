import Logging
import ServiceLifecycle

/// Rescues jobs of dead runners, and keeps the job table's partitions (creates the coming days', drops those past
/// RETENTION, prunes what finished before the cutover), each on one runner at a time (a transaction-scoped advisory
/// lock per task and round, so it also works behind a transaction-pooling PgBouncer). Rescue and housekeeping run
/// in loops of their own, so a long housekeeping step (validating a migrated table) never delays a rescue.
struct Maintenance: Service {
    let store: JobStore
    let config: RunnerConfig
    /// Opened once the runner is registered.
    let gate: StartGate
    /// Wakes the runner's claims (after a rescue put jobs back).
    let wakeClaims: @Sendable () -> Void
    let logger: Logger

    func run() async throws {
        await self.gate.waitForStart()
        guard self.gate.isOpen else { return }
        // The rounds run in a task of their own, cancelled at shutdown and not waited for: a round waiting on a
        // database that is gone (postgres-nio kept one waiting past its cancellation) held the runner's exit until
        // its last-resort timer. Each round's work is a transaction, and another runner takes the next round.
        let rounds = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.every(self.config.maintenanceInterval) { await self.rescue() } }
                group.addTask {
                    // Partitions at once (a fresh database needs today's), then every interval.
                    await self.housekeeping()
                    await self.every(self.config.maintenanceInterval * 2) { await self.housekeeping() }
                }
            }
        }
        try? await gracefulShutdown()
        rounds.cancel()
    }

    private func every(_ interval: Duration, _ body: () async -> Void) async {
        while !Task.isCancelled {
            // Jitter keeps runners started together from contending every round.
            try? await Task.sleep(for: interval * Double.random(in: 0.8...1.2))
            if Task.isCancelled { return }
            await body()
        }
    }

    func round() async {
        await self.rescue()
        await self.housekeeping()
    }

    /// Rescues the jobs of runners whose lease ran out. Should PostgreSQL refuse the batch, the jobs are rescued one
    /// by one, each in its own transaction, so one bad row never blocks the rescue of the others.
    func rescue() async {
        let store = self.store
        var rescued: [(id: Int64, status: JobStatus)] = []
        do {
            rescued = try await store.asLeader(.rescue) { connection in
                let rescued = try await store.rescue(on: connection)
                try await store.forgetDeadRunners(on: connection)
                return rescued
            } ?? []
        } catch {
            // Cancelled at shutdown: nothing failed, and another runner takes the next round.
            if Task.isCancelled { return }
            self.logger.warning("rescue failed; rescuing jobs one by one", metadata: ["error": "\(describe(error))"])
            do {
                let stale = try await store.client.withConnection { try await store.stale(on: $0) }
                for id in stale {
                    do {
                        rescued += try await store.asLeader(.rescue) { try await store.rescue(only: id, on: $0) } ?? []
                    } catch {
                        self.logger.error("could not rescue a job; skipping it", metadata: ["job.id": "\(id)", "error": "\(describe(error))"])
                    }
                }
            } catch {
                self.logger.warning("listing jobs to rescue failed", metadata: ["error": "\(describe(error))"])
            }
            // Dead runners are forgotten whatever became of their jobs (a job that cannot be rescued stays stale: its
            // runner is gone either way), or their rows would pile up for as long as one bad row stays.
            do {
                _ = try await store.asLeader(.rescue) { try await store.forgetDeadRunners(on: $0) }
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("forgetting dead runners failed", metadata: ["error": "\(describe(error))"])
            }
        }
        if !rescued.isEmpty {
            self.logger.warning(
                "rescued jobs of runners that stopped heartbeating",
                metadata: ["jobs": "\(rescued.count)", "job.ids": "\(rescued.prefix(20).map(\.id))"])
            self.wakeClaims()
        }
    }

    /// Retention, the partitions of finished jobs, and the per-minute statistics.
    func housekeeping() async {
        let store = self.store
        let retention = self.config.retention
        do {
            _ = try await store.asLeader(.cutover) { try await store.validateCutover(on: $0) }
            if let dropped = try await store.asLeader(.partitions, { try await store.rotatePartitions(retention: retention, daysAhead: 7, on: $0) }),
                dropped > 0
            {
                self.logger.info("dropped partitions of finished jobs past retention", metadata: ["jobs": "\(dropped)"])
            }
        } catch {
            if Task.isCancelled { return }
            self.logger.warning("partition maintenance failed; trying again next round", metadata: ["error": "\(describe(error))"])
        }
        do {
            // The dashboard's per-minute figures: a few minutes at a time, so a first round on a big table stays short.
            _ = try await store.rollUpStats()
        } catch {
            if !Task.isCancelled { self.logger.warning("rolling up statistics failed", metadata: ["error": "\(describe(error))"]) }
        }
        do {
            let pruned = try await store.asLeader(.prune) { try await store.pruneActive(retention: retention, limit: 5000, on: $0) } ?? 0
            if pruned > 0 { self.logger.info("pruned finished jobs", metadata: ["jobs": "\(pruned)"]) }
        } catch {
            if !Task.isCancelled { self.logger.warning("pruning failed", metadata: ["error": "\(describe(error))"]) }
        }
    }
}
