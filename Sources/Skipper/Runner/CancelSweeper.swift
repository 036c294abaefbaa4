import Logging
import ServiceLifecycle

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
        await self.executor.gate.waitForStart()
        guard self.executor.gate.isOpen else { return }
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
                    // Cancelled at shutdown is not a failure.
                    if !Task.isCancelled { self.logger.warning("cancel sweep failed", metadata: ["error": "\(describe(error))"]) }
                }
            }
        }
    }
}
