import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Tracing

/// Claims jobs in batches sized to the free slots and runs each in its own task; on shutdown, stops claiming,
/// gives running jobs the grace period, then cancels and releases them. Its bookkeeping is by claim (job and lease
/// token), so two executions of one job are never confused. It holds jobs only while the runner's lease is held:
/// when the lease runs out (the heartbeat could not land), it stops them all and claims nothing until it is back.
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
        /// Taken from this runner (rescued while it was cut off), or its lease ran out.
        case lost
        /// Ran past its time limit.
        case timedOut(Duration)
    }

    private struct State {
        var running: [Claim: Running] = [:]
        var waitingForSlot = false
        var stopping = false
        /// Claims the last sweep found held here but neither running nor pending: released only when the next
        /// sweep finds them so again (a claim whose answer is merely slow is started by then).
        var orphanSuspects: Set<Claim> = []
        /// Orphans released by the sweep, and when: should their claim's answer arrive after all (it is abandoned
        /// after 30 s), they are not started. Forgotten after a minute.
        var releasedOrphans: [Claim: ContinuousClock.Instant] = [:]
        /// Claims on their way: while one is, no orphan is confirmed (its jobs may be the ones it brings).
        var claimsInFlight = 0
    }

    let store: JobStore
    let handlers: [String: AnyJobHandler]
    let config: RunnerConfig
    let runnerID: String
    let logger: Logger
    let completer: Completer
    let board: ProgressBoard
    let gate: StartGate
    let lease: RunnerLease
    /// The runner's control connections (the heartbeat's): statements' cancels are sent from there.
    let control: PostgresClient
    let metrics: RunnerMetrics
    /// Rung by notifications on our queues, by freed slots while all were busy, by finishes written in limited
    /// queues, and by shutdown.
    let wake: WakeSignal
    /// The pause flags and limits of our queues and kinds, as last read (every `controlsRefresh`).
    private let controls = Mutex(QueueControls())
    static let controlsRefresh = Duration.milliseconds(500)
    /// Which limited queue the next claim starts with: each gets its turn to fill the batch first.
    private let limitedTurn = Atomic<Int>(0)
    /// Opens when shutdown is asked for: an in-flight claim gets a second more (see `claim(limit:after:)`).
    private let stopRequested = StartGate()
    private let state = Mutex(State())
    /// The kinds this runner claims: only those it has handlers for.
    private let kinds: [String]
    /// Whether a tracer was there when the runner was made (bootstrapped in swift-distributed-tracing's
    /// `InstrumentationSystem`, or bound to the making task with `withTracer`): then each execution is a span,
    /// continuing the trace in the job's meta. Without one, no span is made and no context extracted.
    private let tracing: Bool

    init(
        store: JobStore, handlers: [String: AnyJobHandler], config: RunnerConfig, runnerID: String, logger: Logger,
        completer: Completer, board: ProgressBoard, gate: StartGate, lease: RunnerLease, control: PostgresClient,
        metrics: RunnerMetrics, wake: WakeSignal = WakeSignal()
    ) {
        self.wake = wake
        self.metrics = metrics
        self.control = control
        self.store = store
        self.handlers = handlers
        self.kinds = handlers.keys.sorted()
        let instrument = InstrumentationSystem.instrument
        self.tracing = !(instrument is NoOpInstrument) && !(instrument is NoOpTracer)
        self.config = config
        self.runnerID = runnerID
        self.logger = logger
        self.completer = completer
        self.board = board
        self.gate = gate
        self.lease = lease
    }

    func run() async throws {
        await self.gate.waitForStart()
        guard self.gate.isOpen else { return }
        // The lease is watched through the shutdown grace too: jobs still running then must stop as soon as the
        // lease runs out, like any others, or they would run on beside their rescued selves.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.watchLease() }
            group.addTask { await self.watchControls() }
            group.addTask { await self.sampleGauges() }
            await withGracefulShutdownHandler {
                await self.claimLoop()
            } onGracefulShutdown: {
                self.state.withLock { $0.stopping = true }
                self.wake.signal()
                self.stopRequested.open()
            }
            await self.drain()
            group.cancelAll()
        }
    }

    /// Stops every running job once the runner's lease runs out, before the leader may rescue them.
    private func watchLease() async {
        var lost = false
        while !Task.isCancelled {
            let held = self.lease.isHeld
            if !held {
                // On every tick while the lease is out, not only when it runs out: a job started by a claim that
                // was on its way at that moment is stopped too (`stop` skips jobs already stopping).
                let claims = self.runningClaims
                if !lost, !claims.isEmpty {
                    self.logger.warning(
                        "the runner's lease ran out (no heartbeat landed); stopping its jobs before they can be rescued",
                        metadata: ["jobs": "\(claims.count)", "lease": "\(self.lease.length)"])
                }
                for claim in claims { self.stop(claim, reason: .lost) }
            } else if lost {
                self.logger.info("the runner's lease is held again; claiming")
                self.wake.signal()
            }
            lost = !held
            // Wake at the expiry if it is near, at the latest every 100 ms.
            let wait = held ? (self.lease.expiresAt.map { min(max($0 - .now, .milliseconds(5)), .milliseconds(100)) } ?? .milliseconds(100)) : .milliseconds(100)
            try? await Task.sleep(for: wait)
        }
    }

    /// Every second: the jobs running here and the lease's age, for the gauges.
    private func sampleGauges() async {
        while !Task.isCancelled {
            self.metrics.running.record(self.state.withLock { $0.running.count })
            if let expires = self.lease.expiresAt {
                let age = ContinuousClock.now - (expires - self.lease.safe)
                self.metrics.leaseAge.record(Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18)
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Re-reads the pause flags and limits of the runner's queues and kinds every `controlsRefresh`. The fast claim
    /// checks them itself too (it claims nothing from a queue that a stale view takes for uncontrolled), so a pause
    /// or a new limit holds at once; this view decides how the next claims are made.
    private func watchControls() async {
        var failed = false
        while !Task.isCancelled {
            do {
                let fresh = try await self.store.controls(queues: self.config.queues, kinds: self.kinds)
                let changed = self.controls.withLock { current -> Bool in
                    defer { current = fresh }
                    return current != fresh
                }
                if changed {
                    self.logger.info(
                        "queue controls changed",
                        metadata: ["paused": "\(fresh.paused.sorted())", "limited": "\(fresh.limited.sorted())", "kinds.limited": "\(fresh.limitedKinds.sorted())"])
                    self.wake.signal()
                }
                failed = false
            } catch {
                if !failed { self.logger.warning("could not read queue controls; keeping the last", metadata: ["error": "\(describe(error))"]) }
                failed = true
            }
            try? await Task.sleep(for: Self.controlsRefresh)
        }
    }

    // MARK: - Claiming

    private func claimLoop() async {
        var backoff = Backoff(base: .milliseconds(200))
        var lastClaim = ContinuousClock.now
        // Under load, claiming whenever a single slot frees makes many one-job claims, each a commit. Wait a moment
        // for half a batch of free slots instead; an idle runner, or one that has waited long enough, claims at once.
        let threshold = max(1, min(self.config.workers, self.config.claimBatch) / 2)
        let cooldown = Duration.milliseconds(20)
        // Where each queue's last claim stopped: the next resumes there (see ClaimPosition). A claim from the head,
        // which also finds jobs queued ahead of that point (a more urgent priority), at least every 250 ms, and
        // whenever a claim did not fill its batch.
        var positions: [String: ClaimPosition] = [:]
        var lastFromHead = ContinuousClock.now
        let fromHeadEvery = Duration.milliseconds(250)
        while !Task.isCancelled {
            let (free, running, stopping) = self.state.withLock { state -> (Int, Int, Bool) in
                let free = self.config.workers - state.running.count
                state.waitingForSlot = free < threshold
                return (free, state.running.count, state.stopping)
            }
            if stopping { return }
            guard self.lease.isHeld else {
                await self.wake.wait(timeout: .milliseconds(100))
                continue
            }
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
            if ContinuousClock.now - lastFromHead >= fromHeadEvery {
                positions = [:]
            }
            if positions.isEmpty { lastFromHead = .now }
            do {
                lastClaim = .now
                jobs = try await self.claim(limit: limit, after: positions)
                backoff.reset()
                self.metrics.claimed(jobs)
            } catch {
                if self.state.withLock({ $0.stopping }) { return }
                let delay = backoff.next()
                self.logger.warning(
                    "claim failed; retrying", metadata: ["error": "\(describe(error))", "retry.in": "\(delay)"])
                await self.wake.wait(timeout: delay)
                continue
            }
            if !jobs.isEmpty, !self.lease.isHeld {
                // The lease ran out while the claim was on its way: hand the jobs back untouched.
                for job in jobs { self.completer.submit(Finished(claim: job.claim, outcome: .released)) }
                continue
            }
            for job in jobs {
                self.start(job)
                positions[job.queue] = max(positions[job.queue] ?? .start, job.position)
            }
            // A full batch means more may be waiting; otherwise sleep until a notification or the poll interval.
            if jobs.count < limit {
                positions = [:]
                self.state.withLock { $0.waitingForSlot = false }
                await self.wake.wait(timeout: self.config.pollInterval)
            }
        }
    }

    /// A claim, cut short a second after shutdown was asked for. With PostgreSQL gone, a claim waits for a pooled
    /// connection, and held up the runner's shutdown until it was force-cancelled (grace + 15 s). On a reachable
    /// database a claim takes milliseconds and finishes; one cut short after its commit leaves its jobs RUNNING
    /// under this runner, and rescue requeues them once its row is gone.
    private func claim(limit: Int, after positions: [String: ClaimPosition]) async throws -> [ClaimedJob] {
        self.state.withLock { $0.claimsInFlight += 1 }
        defer { self.state.withLock { $0.claimsInFlight -= 1 } }
        return try await withThrowingTaskGroup(of: [ClaimedJob]?.self) { group in
            group.addTask {
                // Abandoned after 30 s (a claim sent as its connection closed can wait forever for its answer); if it
                // committed after all, the cancel sweep releases the jobs it took.
                try await abandoningAfter(.seconds(30)) { try await self.claimFromEachQueue(limit: limit, after: positions) }
            }
            group.addTask {
                await self.stopRequested.wait()
                try await Task.sleep(for: .seconds(1))
                return nil
            }
            defer { group.cancelAll() }
            guard let jobs = try await group.next(), let jobs else { throw CancellationError() }
            return jobs
        }
    }

    /// The fast claim for the queues and kinds without controls, then `skipper.claim_limited` for each limited queue
    /// and for the limited kinds of the others (taking turns at going first), until `limit` jobs are claimed. Paused
    /// queues are skipped. A claim that fails after others committed returns what they took, so no claimed job is
    /// left unstarted.
    private func claimFromEachQueue(limit: Int, after positions: [String: ClaimPosition]) async throws -> [ClaimedJob] {
        let controls = self.controls.withLock { $0 }
        let (fast, limited) = controls.plan(queues: self.config.queues, kinds: self.kinds)
        var jobs: [ClaimedJob] = []
        if !fast.queues.isEmpty {
            jobs = try await self.store.claim(queues: fast.queues, kinds: fast.kinds, runnerID: self.runnerID, limit: limit, after: positions)
        }
        guard !limited.isEmpty else { return jobs }
        let first = self.limitedTurn.wrappingAdd(1, ordering: .relaxed).oldValue
        for index in 0..<limited.count where jobs.count < limit {
            let (queue, kinds) = limited[(first + index) % limited.count]
            // A queue limited as a whole resumes where its last claim stopped, as the fast claim does; a queue whose
            // other kinds the fast claim takes has a position of the fast claim's, so it starts from the head.
            let after = kinds.count == self.kinds.count ? positions[queue] ?? .start : .start
            do {
                jobs += try await self.store.claimLimited(
                    queue: queue, kinds: kinds, runnerID: self.runnerID, limit: limit - jobs.count, after: after,
                    sharesFirst: controls.claimsFromShares(queue: queue, kinds: kinds))
            } catch {
                guard !jobs.isEmpty else { throw error }
                self.logger.warning("a limited claim failed; starting what the others took", metadata: ["queue": "\(queue)", "error": "\(describe(error))"])
                break
            }
        }
        return jobs
    }

    private func start(_ job: ClaimedJob) {
        guard self.lease.isHeld else {
            // The lease ran out between the claim's answer and here: hand the job back untouched.
            self.completer.submit(Finished(claim: job.claim, outcome: .released))
            return
        }
        // Released as an orphan while its claim's answer was late: another runner may hold it now.
        if self.state.withLock({ $0.releasedOrphans.removeValue(forKey: job.claim) != nil }) { return }
        self.board.start(job.claim)
        self.state.withLock { state in
            let task = Task { await self.execute(job) }
            state.running[job.claim] = Running(job: job, task: task, claimedAt: .now, stopReason: nil)
        }
    }

    // MARK: - Running one job

    private func execute(_ job: ClaimedJob) async {
        let context = JobContext(
            jobID: job.id, lease: job.lease, kind: job.kind, queue: job.queue, attempt: job.attempt,
            maxAttempts: job.maxAttempts, meta: job.meta, requestID: job.requestID, runnerLogger: self.logger,
            postgres: self.store.client, canceller: self.control, cancelsStatements: !self.config.pollOnly && !self.config.pooled, board: self.board)
        // The job's logger (with its metadata) is made only for lines that will be written: setting metadata costs
        // a log handler's formatting, a noticeable share of a busy runner's time.
        let debug = self.logger.logLevel <= .debug
        if debug { context.logger.debug("job started") }
        let outcome: Finished.Outcome
        if let handler = self.handlers[job.kind] {
            outcome = self.tracing
                ? await self.traced(job, context) { await self.run(handler, job, context) }
                : await self.run(handler, job, context)
        } else {
            // The claim takes only kinds this runner handles; should one slip through (a kind renamed under a running
            // process?), it goes back for a runner that has the handler, never FAILED by one that has not.
            context.logger.warning("no handler for this kind here; handing the job back")
            outcome = .released
        }
        switch outcome {
        case .completed: if debug { context.logger.debug("job completed") }
        case .failed(let error, _, let permanent): context.logger.info("job failed", metadata: ["error": "\(error)", "permanent": "\(permanent)"])
        case .cancelled: context.logger.info("job cancelled")
        case .released: context.logger.info("job released for another runner")
        case .snoozed(let delay): if debug { context.logger.debug("job snoozed", metadata: ["delay": "\(delay)"]) }
        }
        let progress = self.board.finish(job.claim)
        let limited = self.controls.withLock { $0.isLimited(queue: job.queue, kind: job.kind) }
        self.completer.submit(
            Finished(
                claim: job.claim, outcome: outcome, processed: progress?.processed ?? -1, total: progress?.total ?? -1,
                announce: job.meta.utf8.count > 2 && job.meta.contains(announceFinishKey), limitedQueue: limited ? job.queue : nil))
        let (wakeClaimer, started) = self.state.withLock { state in
            (state.waitingForSlot, state.running.removeValue(forKey: job.claim)?.claimedAt)
        }
        if wakeClaimer { self.wake.signal() }
        self.metrics.finished(kind: job.kind, outcome: Self.metricOutcome(outcome, job: job), after: started.map { .now - $0 } ?? .zero)
    }

    /// Runs the handler under the job's time limit: what the attempt came to.
    private func run(_ handler: AnyJobHandler, _ job: ClaimedJob, _ context: JobContext) async -> Finished.Outcome {
        let timer = (job.timeout ?? handler.timeout).map { limit in Task { await self.enforce(limit, on: job.claim) } }
        defer { timer?.cancel() }
        do {
            let result = try await handler.execute(job.args, context)
            // Past its deadline the attempt has failed, even if the handler ignored the cancel and finished.
            if case .timedOut? = self.state.withLock({ $0.running[job.claim]?.stopReason }) {
                return self.outcome(of: CancellationError(), job: job, handler: handler)
            }
            return .completed(result: result)
        } catch {
            return self.outcome(of: error, job: job, handler: handler)
        }
    }

    /// Runs `body` in a consumer span named after the kind, continuing the trace in the job's meta (`traceparent`
    /// and `tracestate`, as the API or an enqueuing span left them), or starting one when it has none. The span
    /// carries the job's id, queue, kind, attempt and outcome, and an error status when the attempt failed.
    private func traced(_ job: ClaimedJob, _ context: JobContext, _ body: () async -> Finished.Outcome) async -> Finished.Outcome {
        var parent = ServiceContext.topLevel
        if let traceParent = context.traceParent {
            var carrier = [TraceParent.metaKey: traceParent.description]
            if job.meta.contains(#""\#(TraceParent.stateMetaKey)""#),
                let object = try? JSONSerialization.jsonObject(with: Data(job.meta.utf8)) as? [String: Any],
                let state = (object[TraceParent.stateMetaKey] as? String).flatMap(TraceParent.validState)
            {
                carrier[TraceParent.stateMetaKey] = state
            }
            InstrumentationSystem.instrument.extract(carrier, into: &parent, using: MetaExtractor())
            // A tracestate the tracer cannot parse (written by SQL, say) makes it drop the whole context: the
            // traceparent alone still continues the trace the job's log lines name.
            if parent.isEmpty && carrier.count > 1 {
                InstrumentationSystem.instrument.extract([TraceParent.metaKey: traceParent.description], into: &parent, using: MetaExtractor())
            }
        }
        return await withSpan(job.kind, context: parent, ofKind: .consumer) { span in
            span.attributes["messaging.system"] = "skipper"
            span.attributes["messaging.operation.type"] = "process"
            span.attributes["messaging.destination.name"] = job.queue
            span.attributes["messaging.message.id"] = "\(job.id)"
            span.attributes["skipper.job.kind"] = job.kind
            span.attributes["skipper.job.attempt"] = Int(job.attempt)
            let outcome = await body()
            span.attributes["skipper.job.outcome"] = Self.metricOutcome(outcome, job: job)
            if case .failed(let error, _, _) = outcome { span.setStatus(SpanStatus(code: .error, message: error)) }
            return outcome
        }
    }

    /// The outcome's name in `skipper_jobs_finished_total`: a failure is `retried` when the job has attempts left.
    static func metricOutcome(_ outcome: Finished.Outcome, job: ClaimedJob) -> String {
        switch outcome {
        case .completed: "completed"
        case .failed(_, _, let permanent): permanent || job.attempt >= job.maxAttempts ? "failed" : "retried"
        case .cancelled: "cancelled"
        case .released: "released"
        case .snoozed: "snoozed"
        }
    }

    private func outcome(of error: any Error, job: ClaimedJob, handler: AnyJobHandler) -> Finished.Outcome {
        let reason = self.state.withLock { $0.running[job.claim]?.stopReason }
        switch reason {
        case .cancelRequested: return .cancelled
        case .shutdown, .lost: return .released
        case .timedOut(let limit):
            return .failed(error: "timed out after \(ConfigError.describe(limit))", retryDelay: handler.retryDelay(job.attempt), permanent: false)
        case nil: break
        }
        switch error {
        case JobError.snooze(let delay):
            return .snoozed(delay)
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

    /// Stops the job at its time limit; a handler still running a second later ignores cancellation, which is
    /// logged (its slot stays taken until it returns). Cancelled when the handler returns first.
    private func enforce(_ limit: Duration, on claim: Claim) async {
        do {
            try await Task.sleep(for: limit)
        } catch { return }
        self.stop(claim, reason: .timedOut(limit))
        let grace = min(limit, .seconds(1))
        guard (try? await Task.sleep(for: grace)) != nil else { return }
        self.logger.warning(
            "a timed-out job's handler ignores cancellation; its slot stays taken until it returns",
            metadata: ["job.id": "\(claim.jobID)", "job.lease": "\(claim.lease)", "timeout": "\(ConfigError.describe(limit))"])
    }

    // MARK: - Cancelling

    /// Cancels the task of a job this runner is running, because its cancel was requested.
    func cancel(jobID: Int64) {
        let claims = self.state.withLock { $0.running.keys.filter { $0.jobID == jobID } }
        for claim in claims { self.stop(claim, reason: .cancelRequested) }
    }

    /// Reconciles with the claims the database says this runner holds: cancels requested ones; stops local tasks
    /// whose claim is no longer held (the job was rescued while this runner was cut off), since their writes would
    /// be dropped; and releases orphans, claims held here that neither run here nor wait in the completer: their
    /// claim committed but its answer never arrived (the connection dropped), so without this they would stay
    /// RUNNING under a runner whose heartbeat keeps them from rescue.
    func reconcile(held: [JobStore.HeldJob], queriedAt: ContinuousClock.Instant) {
        let heldClaims = Set(held.map(\.claim))
        for job in held where job.cancelRequested { self.stop(job.claim, reason: .cancelRequested) }
        // Running first, then the completer: a claim moves from the first to the second, never back.
        let (lost, running) = self.state.withLock { state in
            (state.running.values.filter { $0.claimedAt < queriedAt && !heldClaims.contains($0.job.claim) }.map(\.job.claim),
             Set(state.running.keys))
        }
        for claim in lost {
            self.logger.warning("job no longer held by this runner; stopping it", metadata: ["job.id": "\(claim.jobID)", "job.lease": "\(claim.lease)"])
            self.stop(claim, reason: .lost)
        }
        let pending = self.completer.pendingClaims
        let suspects = held.filter { $0.settled && !running.contains($0.claim) && !pending.contains($0.claim) }.map(\.claim)
        let orphans = self.state.withLock { state -> [Claim] in
            let running = state.running
            // Not while a claim is on its way: the jobs it brings may be these.
            let confirmed = state.claimsInFlight > 0 ? [] : suspects.filter { state.orphanSuspects.contains($0) && running[$0] == nil }
            state.orphanSuspects = Set(suspects)
            let now = ContinuousClock.now
            state.releasedOrphans = state.releasedOrphans.filter { now - $0.value < .seconds(60) }
            for claim in confirmed { state.releasedOrphans[claim] = now }
            return confirmed
        }
        let pendingNow = orphans.isEmpty ? [] : self.completer.pendingClaims
        for claim in orphans where !pendingNow.contains(claim) {
            self.logger.warning(
                "job held but never started here (its claim's answer was lost); releasing it",
                metadata: ["job.id": "\(claim.jobID)", "job.lease": "\(claim.lease)"])
            self.completer.submit(Finished(claim: claim, outcome: .released))
        }
    }

    private func stop(_ claim: Claim, reason: StopReason) {
        let task = self.state.withLock { state -> Task<Void, Never>? in
            guard var running = state.running[claim], running.stopReason == nil else { return nil }
            running.stopReason = reason
            state.running[claim] = running
            return running.task
        }
        task?.cancel()
    }

    /// The claims running here now.
    var runningClaims: [Claim] { self.state.withLock { Array($0.running.keys) } }

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
        let left = self.runningClaims
        if !left.isEmpty {
            self.logger.info("grace period over; cancelling and releasing jobs", metadata: ["jobs": "\(left.count)"])
            for claim in left { self.stop(claim, reason: .shutdown) }
            // Handlers see cancellation; give them a moment to unwind before the completer's last flush.
            let hardDeadline = ContinuousClock.now + .seconds(5)
            while self.state.withLock({ !$0.running.isEmpty }), ContinuousClock.now < hardDeadline {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
    }
}
