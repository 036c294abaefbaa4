import Foundation
import Logging
import PostgresNIO
import Synchronization

/// What a running handler knows and can do besides its arguments.
public struct JobContext: Sendable {
    /// The job's id.
    public let jobID: Int64
    /// Its kind.
    public let kind: String
    /// Its queue.
    public let queue: String
    /// This attempt's number, from 1.
    public let attempt: Int32
    /// Attempts allowed.
    public let maxAttempts: Int32
    /// `meta` as JSON text (request id, submitter...).
    public let meta: String
    /// A logger with `job.id`, `job.kind`, `job.attempt` (and `request.id` when the job has one).
    public let logger: Logger
    /// The runner's Postgres client, for the handler's own queries.
    public let postgres: PostgresClient
    let board: ProgressBoard

    /// Reports progress. Cheap: it records the numbers; the runner writes them at most every 500 ms per job,
    /// and once more when the job ends.
    public func progress(processed: Int64, total: Int64? = nil) {
        self.board.update(jobID: self.jobID, processed: processed, total: total)
    }

    /// Leases a connection whose in-flight query is cancelled on the server (`pg_cancel_backend`) when this task is
    /// cancelled, so a long statement stops at once instead of running to its end.
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try Task.checkCancellation()
        let client = self.postgres
        let logger = self.logger
        return try await client.withConnection { connection in
            var pid: Int32 = 0
            for try await value in try await connection.query("SELECT pg_backend_pid()", logger: logger).decode(Int32.self) {
                pid = value
            }
            let backend = pid
            let canceller = Mutex<Task<Void, Never>?>(nil)
            // The connection goes back to the pool only once the cancel request has been delivered: a late one would
            // otherwise hit whatever the next borrower runs on this backend (such as the job's own clean-up).
            do {
                let value = try await withTaskCancellationHandler {
                    try await body(connection)
                } onCancel: {
                    canceller.withLock { $0 = Task { _ = try? await client.query("SELECT pg_cancel_backend(\(backend))", logger: logger) } }
                }
                await canceller.withLock({ $0 })?.value
                return value
            } catch {
                await canceller.withLock({ $0 })?.value
                // A statement cancelled for us surfaces as a server error; the caller should see cancellation.
                if Task.isCancelled { throw CancellationError() }
                throw error
            }
        }
    }
}

/// The latest progress of each running job, written in batches by the runner's progress flusher.
final class ProgressBoard: Sendable {
    struct Entry: Sendable, Equatable {
        var attempt: Int32
        var processed: Int64
        var total: Int64?
        var dirty: Bool
    }

    private let entries = Mutex<[Int64: Entry]>([:])

    /// A job started: its progress is tracked from here.
    func start(jobID: Int64, attempt: Int32) {
        self.entries.withLock { $0[jobID] = Entry(attempt: attempt, processed: 0, total: nil, dirty: false) }
    }

    func update(jobID: Int64, processed: Int64, total: Int64?) {
        self.entries.withLock { entries in
            guard var entry = entries[jobID] else { return }
            entry.processed = processed
            if let total { entry.total = total }
            entry.dirty = true
            entries[jobID] = entry
        }
    }

    /// Takes every changed entry and marks it written; a total of -1 means unknown.
    func takeDirty() -> [(id: Int64, attempt: Int32, processed: Int64, total: Int64)] {
        self.entries.withLock { entries in
            var changed: [(id: Int64, attempt: Int32, processed: Int64, total: Int64)] = []
            for (id, entry) in entries where entry.dirty {
                changed.append((id, entry.attempt, entry.processed, entry.total ?? -1))
                entries[id]?.dirty = false
            }
            return changed
        }
    }

    /// Removes a finished job and returns its last numbers, for the job's final write. Always returned, even when
    /// the flusher took them: its write may still be in flight and lose to the completion, which is fenced.
    func finish(jobID: Int64) -> (processed: Int64, total: Int64?)? {
        self.entries.withLock { entries in
            guard let entry = entries.removeValue(forKey: jobID), entry.dirty || entry.processed > 0 else { return nil }
            return (entry.processed, entry.total)
        }
    }
}
