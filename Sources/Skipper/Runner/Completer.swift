import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Writes finished attempts in batches: whatever finished while the previous write was in flight goes in the
/// next one, so under load one UPDATE finishes many jobs.
///
/// A write that fails because PostgreSQL is unreachable or busy is retried whole, with backoff, never dropped. A
/// write that PostgreSQL refuses (a value it cannot store: a result over jsonb's limit, an interval out of range) is
/// halved until the refused outcome stands alone, so the others are written; the refused one is recorded as FAILED
/// with the reason, and nothing can jam the completer for the rest of the runner's jobs.
final class Completer: Service, Sendable {
    let store: JobStore
    let runnerID: String
    let logger: Logger
    private let buffer = Mutex<[Finished]>([])
    /// The batch being written now (sharing the batch's storage: no copy on the hot path).
    private let writing = Mutex<[Finished]>([])
    private let wake = WakeSignal()
    private let stopping = Atomic<Bool>(false)
    /// Opens when shutdown reaches the completer (after the executor stopped).
    private let stopped = StartGate()
    /// How long the last writes may keep failing at shutdown (PostgreSQL unreachable) before the runner gives up on
    /// them and exits: the jobs stay RUNNING under its id, and a rescue requeues them once its lease runs out.
    let finalFlush: Duration
    /// Rung when finishes of limited queues were written (a slot may have opened): the runner's claimer.
    let wakeClaims: WakeSignal
    /// When the other runners of limited queues were last woken.
    private let lastAnnounce = Mutex(ContinuousClock.now - .seconds(1))

    /// Batch sizes and write times.
    let metrics: RunnerMetrics

    init(
        store: JobStore, runnerID: String, logger: Logger, wakeClaims: WakeSignal = WakeSignal(), metrics: RunnerMetrics = RunnerMetrics(kinds: []),
        finalFlush: Duration = .seconds(10)
    ) {
        self.metrics = metrics
        self.wakeClaims = wakeClaims
        self.store = store
        self.runnerID = runnerID
        self.logger = logger
        self.finalFlush = finalFlush
    }

    /// Outcomes PostgreSQL refused even as FAILED: kept so the sweep never takes them for orphans and releases
    /// (re-runs) a job whose attempt finished; the job stays RUNNING under this runner, logged as critical.
    private let unrecordable = Mutex<Set<Claim>>([])

    /// How long one write may take before it is abandoned and tried again.
    static let writeLimit = Duration.seconds(30)

    /// Claims whose finish is queued, being written, or could not be recorded.
    var pendingClaims: Set<Claim> {
        // Both lists under the buffer's lock, the order every move between them takes: a batch going back from
        // `writing` to the buffer after a failed write is seen in one or the other, never in neither.
        let pending = self.buffer.withLock { buffer in Set(buffer.map(\.claim)).union(self.writing.withLock { $0.map(\.claim) }) }
        return pending.union(self.unrecordable.withLock { $0 })
    }

    /// Queues a finished attempt for the next write.
    func submit(_ finished: Finished) {
        self.buffer.withLock { $0.append(finished) }
        self.wake.signal()
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.loop() }
                group.addTask {
                    await self.stopped.wait()
                    try? await Task.sleep(for: self.finalFlush)
                }
                // The loop ends when everything is written; the other task, at the final flush's deadline.
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .releasing)
            self.stopped.open()
            self.wake.signal()
        }
        let left = self.pendingClaims
        if !left.isEmpty {
            self.logger.error(
                "could not record finished jobs before stopping; they stay RUNNING under this runner until its lease runs out and a rescue requeues them",
                metadata: ["jobs": "\(left.count)", "job.ids": "\(left.prefix(20).map(\.jobID).sorted())"])
        }
    }

    private func loop() async {
        var backoff = Backoff(base: .milliseconds(100))
        while !Task.isCancelled {
            // Jobs of one claimed batch finish within a moment of each other: a short linger writes them together.
            if self.buffer.withLock({ !$0.isEmpty && $0.count < 64 }) { try? await Task.sleep(for: .milliseconds(2)) }
            let batch = self.buffer.withLock { buffer in
                defer { buffer.removeAll(keepingCapacity: true) }
                if !buffer.isEmpty { self.writing.withLock { $0 = buffer } }
                return buffer
            }
            defer { self.writing.withLock { $0 = [] } }
            if batch.isEmpty {
                // Runs after the executor stopped (services stop in reverse order), so empty means done.
                if self.stopping.load(ordering: .acquiring) { return }
                await self.wake.wait(timeout: .seconds(1))
                continue
            }
            do {
                let started = ContinuousClock.now
                try await self.write(batch)
                self.metrics.completerBatch.record(batch.count)
                self.metrics.completerWrite.record(ContinuousClock.now - started)
                backoff.reset()
                self.announceOpenedSlots(batch)
            } catch {
                self.buffer.withLock { buffer in
                    buffer.insert(contentsOf: batch, at: 0)
                    self.writing.withLock { $0 = [] }
                }
                // Cancelled: the final flush ran out of time, and the caller says which jobs stay unrecorded.
                if Task.isCancelled { return }
                let delay = backoff.next()
                self.logger.warning(
                    "writing finished jobs failed; retrying",
                    metadata: ["error": "\(describe(error))", "jobs": "\(batch.count)", "retry.in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// Finishes of jobs whose queue a limit governs free a slot: this runner's claimer is woken, and the queue's
    /// other runners by a `skipper_jobs` notification (best effort: they poll too).
    private func announceOpenedSlots(_ batch: [Finished]) {
        // Most batches have no limited queue: nothing to build for them.
        guard batch.contains(where: { $0.limitedQueue != nil }) else { return }
        let queues = Set(batch.compactMap(\.limitedQueue))
        self.wakeClaims.signal()
        // The other runners at most every 50 ms: a NOTIFY per batch would serialise the commits of a busy queue.
        let now = ContinuousClock.now
        let due = self.lastAnnounce.withLock { last -> Bool in
            guard now - last >= .milliseconds(50) else { return false }
            last = now
            return true
        }
        guard due else { return }
        let store = self.store
        Task { try? await store.notifyInserted(queues: queues.sorted()) }
    }

    /// Writes `batch`, isolating outcomes PostgreSQL refuses; throws only when the write may succeed if tried again.
    private func write(_ batch: [Finished]) async throws {
        let applied: Set<Claim>
        do {
            // Abandoned after 30 s and tried again (finishes are fenced, so a second landing changes nothing): a
            // write sent as its connection closed can otherwise wait forever, and every finish with it.
            let store = self.store, runnerID = self.runnerID
            applied = try await abandoningAfter(Self.writeLimit) { try await store.finish(batch, runnerID: runnerID) }
        } catch let error as PSQLError where Self.isRefusal(error) {
            if batch.count > 1 {
                let middle = batch.count / 2
                try await self.write(Array(batch[..<middle]))
                try await self.write(Array(batch[middle...]))
                return
            }
            let refused = batch[0]
            let reason = "the runner could not record this attempt's outcome: \(describe(error))"
            self.logger.error(
                "PostgreSQL refused a job's outcome; recording it as FAILED",
                metadata: ["job.id": "\(refused.claim.jobID)", "job.lease": "\(refused.claim.lease)", "error": "\(describe(error))"])
            do {
                let store = self.store, runnerID = self.runnerID, failed = refused.failedInstead(reason)
                _ = try await abandoningAfter(Self.writeLimit) { try await store.finish([failed], runnerID: runnerID) }
            } catch let error as PSQLError where Self.isRefusal(error) {
                // Not even that can be stored: set it aside rather than jam every other job. It stays RUNNING under
                // this runner (rescued if the runner stops), never released by the sweep to run again.
                self.unrecordable.withLock { _ = $0.insert(refused.claim) }
                self.logger.critical(
                    "could not record the job at all; it stays RUNNING under this runner until the runner stops",
                    metadata: ["job.id": "\(refused.claim.jobID)", "error": "\(describe(error))"])
            }
            return
        }
        if applied.count < batch.count {
            for item in batch where !applied.contains(item.claim) {
                self.logger.warning(
                    "late write dropped: the job is no longer held by this claim",
                    metadata: ["job.id": "\(item.claim.jobID)", "job.lease": "\(item.claim.lease)"])
            }
        }
    }

    /// True when PostgreSQL refused the statement for what it contains: a data exception (22), a constraint (23),
    /// a program limit (54), so the same rows would be refused again. Anything else (connection, shutdown,
    /// resources, serialization, deadlock, a lock timeout, a read-only standby after a failover, a revoked grant)
    /// is about the server or other sessions, not these rows: the whole batch is tried again, never halved into
    /// FAILED jobs.
    static func isRefusal(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return self.isRefusal(sqlState: state)
    }

    static func isRefusal(sqlState: String) -> Bool { ["22", "23", "54"].contains(where: sqlState.hasPrefix) }
}
