import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Group insert for the API's submit: submissions that arrive while earlier ones are being written share one
/// INSERT, one round trip and one commit.
///
/// A submission never waits for company. When fewer than `maxFlights` statements are in flight it is written at
/// once, alone (the prepared single-row INSERT); only when every flight is busy does it queue, and the next free
/// flight takes everything queued in one statement. So a lone client sees the latency of the bare INSERT, and 32
/// concurrent clients pay PostgreSQL a few commits instead of 32 (a single-row INSERT is mostly its commit).
/// Every caller still returns only after its own row has committed. Two flights by default: on 2 cores with 32
/// HTTP clients, one flight made 8,200 submissions/s, two 8,900/s and four 6,000/s (smaller batches, more commits).
///
/// A batch that PostgreSQL rejects (a row with a value it refuses) is halved until the refused row stands
/// alone, so each caller gets its own outcome. A caller whose task is cancelled (the API's deadline) returns at once with
/// `CancellationError`; if its row was not yet sent, it is never written.
final class SubmitBatcher: Sendable {
    private typealias Waiter = CheckedContinuation<JobRecord, any Error>

    private struct Waiting {
        let waiter: Waiter
        /// The batch being written with this submission, once a flight took it.
        var batch: UInt64?
    }

    private struct State {
        var nextToken: UInt64 = 0
        /// Submissions not yet taken by a flight, oldest first.
        var queued: [(token: UInt64, job: NewJob)] = []
        /// Everyone still waiting for an outcome, queued or in flight.
        var waiting: [UInt64: Waiting] = [:]
        var flights = 0
        /// Statements being written, by batch number: the task writing it and how many callers still wait for it.
        var writing: [UInt64: (task: Task<[JobRecord], any Error>, callers: Int)] = [:]
        var nextBatch: UInt64 = 0
    }

    /// How long a batch's INSERT may take before its flight gives up on it (its callers have long had their answer:
    /// the API's `DB_TIMEOUT`). The rows may still land; a caller told it failed may find its job written.
    static let writeLimit = Duration.seconds(10)

    private let store: JobStore
    private let maxFlights: Int
    private let maxBatch: Int
    private let state = Mutex(State())

    init(store: JobStore, maxFlights: Int = 2, maxBatch: Int = 500) {
        self.store = store
        self.maxFlights = maxFlights
        self.maxBatch = maxBatch
    }

    func submit(_ job: NewJob) async throws -> JobRecord {
        let token = self.state.withLock { state in
            state.nextToken += 1
            return state.nextToken
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: Waiter) in
                // Decided under the lock, so that the cancellation handler and this never both resume the waiter.
                let (registered, startFlight) = self.state.withLock { state -> (Bool, Bool) in
                    if Task.isCancelled { return (false, false) }
                    state.waiting[token] = Waiting(waiter: waiter)
                    state.queued.append((token, job))
                    guard state.flights < self.maxFlights else { return (true, false) }
                    state.flights += 1
                    return (true, true)
                }
                if !registered { waiter.resume(throwing: CancellationError()) }
                if startFlight { Task { await self.fly() } }
            }
        } onCancel: {
            let (waiter, abandoned) = self.state.withLock { state -> (Waiter?, Task<[JobRecord], any Error>?) in
                state.queued.removeAll { $0.token == token }
                guard let gone = state.waiting.removeValue(forKey: token) else { return (nil, nil) }
                // The last caller of a batch still being written is gone (PostgreSQL unreachable, say): stop the
                // write, so that rows nobody will hear about are not stored once the server answers again.
                guard let batch = gone.batch, var entry = state.writing[batch] else { return (gone.waiter, nil) }
                entry.callers -= 1
                state.writing[batch] = entry
                return (gone.waiter, entry.callers == 0 ? entry.task : nil)
            }
            waiter?.resume(throwing: CancellationError())
            abandoned?.cancel()
        }
    }

    /// One flight: writes what is queued, batch after batch, until nothing is.
    private func fly() async {
        while true {
            let batch = self.state.withLock { state -> [(token: UInt64, job: NewJob)] in
                let taken = Array(state.queued.prefix(self.maxBatch))
                state.queued.removeFirst(taken.count)
                if taken.isEmpty { state.flights -= 1 }
                return taken
            }
            if batch.isEmpty { return }
            await self.write(batch)
        }
    }

    private func write(_ batch: [(token: UInt64, job: NewJob)]) async {
        let items = batch.map(\.job), store = self.store
        // Abandoned after a while: an INSERT whose connection was cut can wait for an answer that never comes, and
        // a flight that never lands would hold its slot, and with every slot held no submission is written again.
        let work = Task { try await abandoningAfter(Self.writeLimit) { try await store.insertReturning(items) } }
        let number = self.state.withLock { state -> UInt64? in
            state.nextBatch += 1
            var callers = 0
            for entry in batch where state.waiting[entry.token] != nil {
                state.waiting[entry.token]!.batch = state.nextBatch
                callers += 1
            }
            guard callers > 0 else { return nil }
            state.writing[state.nextBatch] = (work, callers)
            return state.nextBatch
        }
        guard let number else {
            // Every caller gave up while the batch was being taken.
            work.cancel()
            return
        }
        let outcome = await work.result
        self.state.withLock { _ = $0.writing.removeValue(forKey: number) }
        switch outcome {
        case .success(let records):
            for (entry, record) in zip(batch, records) { self.resume(entry.token, with: .success(record)) }
        case .failure(let error as PSQLError) where batch.count > 1 && error.serverInfo != nil:
            // PostgreSQL refused a row: halve the batch until the refused row stands alone, so every other caller
            // still gets its job, at the cost of a few statements rather than one per row.
            let middle = batch.count / 2
            await self.write(Array(batch[..<middle]))
            await self.write(Array(batch[middle...]))
        case .failure(let error):
            for entry in batch { self.resume(entry.token, with: .failure(error)) }
        }
    }

    private func resume(_ token: UInt64, with result: Result<JobRecord, any Error>) {
        self.state.withLock { $0.waiting.removeValue(forKey: token) }?.waiter.resume(with: result)
    }
}
