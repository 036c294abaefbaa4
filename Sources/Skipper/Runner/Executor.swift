import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Claims jobs in batches sized to the free slots and runs each in its own task; on shutdown, stops claiming,
/// gives running jobs the grace period, then cancels and releases them.
final class Executor: Service, Sendable {
    private struct Running {
        let job: ClaimedJob
        let task: Task<Void, Never>
        let claimedAt: ContinuousClock.Instant
        var stopReason: StopReason?
    }

    enum StopReason: Sendable {
        case cancelRequested
        case shutdown
        case lost
    }

    private struct State {
        var running: [Int64: Running] = [:]
        var waitingForSlot = false
        var stopping = false
    }

    let store: JobStore
    let handlers: [String: AnyJobHandler]
    let config: RunnerConfig
    let runnerID: String
    let logger: Logger
    let completer: Completer
    let board: ProgressBoard
    let gate: StartGate
    /// Rung by notifications on our queues, by freed slots while all were busy, and by shutdown.
    let wake = WakeSignal()
    private let state = Mutex(State())

    init(
        store: JobStore, handlers: [String: AnyJobHandler], config: RunnerConfig, runnerID: String, logger: Logger,
        completer: Completer, board: ProgressBoard, gate: StartGate
    ) {
        self.store = store
        self.handlers = handlers
        self.config = config
        self.runnerID = runnerID
        self.logger = logger
        self.completer = completer
        self.board = board
        self.gate = gate
    }

    func run() async throws {
        await self.gate.wait()
        guard self.gate.isOpen else { return }
        await withGracefulShutdownHandler {
            await self.claimLoop()
        } onGracefulShutdown: {
            self.state.withLock { $0.stopping = true }
            self.wake.signal()
        }
        await self.drain()
    }

    // MARK: - Claiming

    private func claimLoop() async {
        var backoff = Backoff(base: .milliseconds(200))
        var lastClaim = ContinuousClock.now
        // Under load, claiming whenever a single slot frees makes many one-job claims, each a commit. Wait a moment
        // for half a batch of free slots instead; an idle runner, or one that has waited long enough, claims at once.
        let threshold = max(1, min(self.config.workers, self.config.claimBatch) / 2)
        let cooldown = Duration.milliseconds(20)
        while !Task.isCancelled {
            let (free, running, stopping) = self.state.withLock { state -> (Int, Int, Bool) in
                let free = self.config.workers - state.running.count
                state.waitingForSlot = free < threshold
                return (free, state.running.count, state.stopping)
            }
            if stopping { return }
            if free == 0 {
                await self.wake.wait(timeout: self.config.pollInterval)
                continue
            }
            let sinceLast = ContinuousClock.now - lastClaim
            if free < threshold, running > 0, sinceLast < cooldown {
                await self.wake.wait(timeout: cooldown - sinceLast)
                continue
            }
            let limit = min(free, self.config.claimBatch)
            let jobs: [ClaimedJob]
            do {
                lastClaim = .now
                jobs = try await self.store.claim(queues: self.config.queues, runnerID: self.runnerID, limit: limit)
                backoff.reset()
            } catch {
                let delay = backoff.next()
                self.logger.warning(
                    "claim failed; retrying", metadata: ["error": "\(describe(error))", "retry.in": "\(delay)"])
                await self.wake.wait(timeout: delay)
                continue
            }
            for job in jobs { self.start(job) }
            // A full batch means more may be waiting; otherwise sleep until a notification or the poll interval.
            if jobs.count < limit {
                self.state.withLock { $0.waitingForSlot = false }
                await self.wake.wait(timeout: self.config.pollInterval)
            }
        }
    }

    private func start(_ job: ClaimedJob) {
        self.board.start(jobID: job.id, attempt: job.attempt)
        self.state.withLock { state in
            let task = Task { await self.execute(job) }
            state.running[job.id] = Running(job: job, task: task, claimedAt: .now, stopReason: nil)
        }
    }

    // MARK: - Running one job

    private func execute(_ job: ClaimedJob) async {
        var logger = self.logger
        logger[metadataKey: "job.id"] = "\(job.id)"
        logger[metadataKey: "job.kind"] = "\(job.kind)"
        logger[metadataKey: "job.attempt"] = "\(job.attempt)"
        if let requestID = job.requestID { logger[metadataKey: "request.id"] = "\(requestID)" }
        logger.debug("job started")
        let context = JobContext(
            jobID: job.id, kind: job.kind, queue: job.queue, attempt: job.attempt, maxAttempts: job.maxAttempts,
            meta: job.meta, logger: logger, postgres: self.store.client, board: self.board)
        let outcome: Finished.Outcome
        if let handler = self.handlers[job.kind] {
            do {
                outcome = .completed(result: try await handler.execute(job.args, context))
            } catch {
                outcome = self.outcome(of: error, job: job, handler: handler)
            }
        } else {
            let known = self.handlers.keys.sorted().joined(separator: ", ")
            outcome = .failed(error: "no handler for kind '\(job.kind)' in this runner (it runs: \(known))", retryDelay: .zero, permanent: true)
        }
        switch outcome {
        case .completed: logger.debug("job completed")
        case .failed(let error, _, let permanent): logger.info("job failed", metadata: ["error": "\(error)", "permanent": "\(permanent)"])
        case .cancelled: logger.info("job cancelled")
        case .released: logger.info("job released for another runner")
        }
        let progress = self.board.finish(jobID: job.id)
        self.completer.submit(
            Finished(id: job.id, attempt: job.attempt, outcome: outcome, processed: progress?.processed ?? -1, total: progress?.total ?? -1))
        let wakeClaimer = self.state.withLock { state -> Bool in
            state.running[job.id] = nil
            return state.waitingForSlot
        }
        if wakeClaimer { self.wake.signal() }
    }

    private func outcome(of error: any Error, job: ClaimedJob, handler: AnyJobHandler) -> Finished.Outcome {
        let reason = self.state.withLock { $0.running[job.id]?.stopReason }
        switch reason {
        case .cancelRequested: return .cancelled
        case .shutdown, .lost: return .released
        case nil: break
        }
        switch error {
        case let error as ArgumentsError:
            return .failed(error: "invalid args: \(error)", retryDelay: .zero, permanent: true)
        case JobError.permanent(let message):
            return .failed(error: message, retryDelay: .zero, permanent: true)
        case JobError.retry(let delay, let message):
            return .failed(error: message, retryDelay: delay, permanent: false)
        default:
            return .failed(error: describe(error), retryDelay: handler.retryDelay(job.attempt), permanent: false)
        }
    }

    // MARK: - Cancelling

    /// Cancels the task of a job this runner is running, because its cancel was requested.
    func cancel(jobID: Int64) { self.stop(jobID: jobID, reason: .cancelRequested) }

    /// Reconciles with the jobs the database says this runner holds: cancels requested ones; stops local tasks
    /// whose job was taken from this runner (rescued while it was cut off), since their writes would be dropped;
    /// and releases orphans, jobs held here that neither run here nor wait in the completer: their claim committed
    /// but its answer never arrived (the connection dropped), so without this they would stay RUNNING under a
    /// runner whose heartbeat keeps them from rescue.
    func reconcile(held: [JobStore.HeldJob], queriedAt: ContinuousClock.Instant) {
        let heldIDs = Set(held.map(\.id))
        for job in held where job.cancelRequested { self.stop(jobID: job.id, reason: .cancelRequested) }
        // Running first, then the completer: a job moves from the first to the second, never back.
        let (lost, running) = self.state.withLock { state in
            (state.running.values.filter { $0.claimedAt < queriedAt && !heldIDs.contains($0.job.id) }.map(\.job.id), Set(state.running.keys))
        }
        for id in lost {
            self.logger.warning("job no longer held by this runner; stopping it", metadata: ["job.id": "\(id)"])
            self.stop(jobID: id, reason: .lost)
        }
        let pending = self.completer.pendingIDs
        for job in held where job.settled && !running.contains(job.id) && !pending.contains(job.id) {
            self.logger.warning("job held but never started here (its claim's answer was lost); releasing it", metadata: ["job.id": "\(job.id)"])
            self.completer.submit(Finished(id: job.id, attempt: job.attempt, outcome: .released, processed: -1, total: -1))
        }
    }

    private func stop(jobID: Int64, reason: StopReason) {
        let task = self.state.withLock { state -> Task<Void, Never>? in
            guard var running = state.running[jobID], running.stopReason == nil else { return nil }
            running.stopReason = reason
            state.running[jobID] = running
            return running.task
        }
        task?.cancel()
    }

    /// Ids of the jobs running here now.
    var runningIDs: [Int64] { self.state.withLock { Array($0.running.keys) } }

    // MARK: - Shutdown

    private func drain() async {
        let count = self.state.withLock { $0.running.count }
        guard count > 0 else { return }
        self.logger.info(
            "stopped claiming; waiting for running jobs", metadata: ["jobs": "\(count)", "grace": "\(self.config.shutdownGrace)"])
        let deadline = ContinuousClock.now + self.config.shutdownGrace
        while self.state.withLock({ !$0.running.isEmpty }), ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = self.runningIDs
        if !left.isEmpty {
            self.logger.info("grace period over; cancelling and releasing jobs", metadata: ["jobs": "\(left.count)"])
            for id in left { self.stop(jobID: id, reason: .shutdown) }
            // Handlers see cancellation; give them a moment to unwind before the completer's last flush.
            let hardDeadline = ContinuousClock.now + .seconds(5)
            while self.state.withLock({ !$0.running.isEmpty }), ContinuousClock.now < hardDeadline {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
    }
}
