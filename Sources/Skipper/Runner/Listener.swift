import Logging
import PostgresNIO
import ServiceLifecycle

/// Holds one connection with `LISTEN skipper_jobs` (wake-ups) and `LISTEN skipper_cancel` (cancel requests),
/// and reconnects by itself. Notifications are hints: polling and the cancel sweep are the floor.
struct Listener: Service {
    let client: PostgresClient
    let executor: Executor
    let sweeper: CancelSweeper
    let queues: Set<String>
    let logger: Logger

    func run() async throws {
        await self.executor.gate.wait()
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await self.client.withConnection { connection in
                    try await connection.listen(on: "skipper_jobs") { jobs in
                        try await connection.listen(on: "skipper_cancel") { cancels in
                            failures = 0
                            // Whatever was sent while we were not listening is lost: look for it now.
                            self.executor.wake.signal()
                            self.sweeper.sweepSoon()
                            try await self.consume(jobs: jobs, cancels: cancels)
                        }
                    }
                }
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                failures += 1
                let delay = Duration.milliseconds(min(100 * (1 << min(failures, 6)), 5000))
                self.logger.warning(
                    "listen connection lost; reconnecting", metadata: ["error": "\(describe(error))", "retry.in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    private func consume(jobs: PostgresNotificationSequence, cancels: PostgresNotificationSequence) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await note in jobs.cancelOnGracefulShutdown() where self.queues.contains(note.payload) {
                    self.executor.wake.signal()
                }
            }
            group.addTask {
                for try await note in cancels.cancelOnGracefulShutdown() {
                    if let id = Int64(note.payload) { self.executor.cancel(jobID: id) }
                }
            }
            // Either ending (shutdown, or the connection dropped) ends both, and the caller reconnects.
            try await group.next()
            group.cancelAll()
        }
    }
}

/// Every few seconds, asks the database which jobs this runner holds: catches cancel requests whose notification
/// was missed (the only path in poll-only mode), jobs rescued away from a runner that was cut off, and jobs held
/// here that this runner never started (a claim whose answer was lost), which it releases.
final class CancelSweeper: Service, Sendable {
    let store: JobStore
    let executor: Executor
    let interval: Duration
    let logger: Logger
    private let wake = WakeSignal()

    init(store: JobStore, executor: Executor, interval: Duration, logger: Logger) {
        self.store = store
        self.executor = executor
        self.interval = interval
        self.logger = logger
    }

    /// A claim's answer reaches the executor well within this; a job held longer and unknown here is an orphan.
    static let settled = Duration.seconds(10)

    /// Sweeps without waiting for the interval (after a reconnect).
    func sweepSoon() { self.wake.signal() }

    func run() async throws {
        await self.executor.gate.wait()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.wake.wait(timeout: self.interval)
                if Task.isCancelled { return }
                let queriedAt = ContinuousClock.now
                do {
                    // Also when nothing runs here: a claim that committed while its answer was lost (the connection
                    // dropped) left jobs RUNNING under this live runner that no rescue would ever take back.
                    let held = try await self.store.heldJobs(runnerID: self.executor.runnerID, settled: Self.settled)
                    self.executor.reconcile(held: held, queriedAt: queriedAt)
                } catch {
                    self.logger.warning("cancel sweep failed", metadata: ["error": "\(describe(error))"])
                }
            }
        }
    }
}
