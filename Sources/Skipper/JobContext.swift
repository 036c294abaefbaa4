import Foundation
import Logging
import PostgresNIO
import Synchronization

/// What a running handler knows and can do besides its arguments.
public struct JobContext: Sendable {
    /// The job's id.
    public let jobID: Int64
    /// The token of the claim this attempt runs under (`skipper.jobs.lease`), never reused.
    public let lease: Int64
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
    /// `meta.request_id`: the X-Request-ID of the API request that submitted the job.
    public let requestID: String?
    /// `meta.traceparent`: the trace the job belongs to (the submitter's, or one the API started), when valid.
    public let traceParent: TraceParent?
    let runnerLogger: Logger
    /// The runner's Postgres client, for the handler's own queries.
    public let postgres: PostgresClient
    /// Whether a cancelled attempt's in-flight statement is cancelled on the server (`pg_cancel_backend`): not
    /// behind a transaction-pooling PgBouncer (`DB_POOLER`, or `POLL_ONLY`), where a backend pid names whichever server connection
    /// ran a statement, so a late cancel could hit another client's statement.
    let cancelsStatements: Bool
    let board: ProgressBoard
    /// Where the cancel of a statement (`pg_cancel_backend`) is sent from: the runner's control connections, never
    /// the pool the handlers use. Sent from that pool, a cancel waited for a connection that only a cancelled
    /// statement could give back, and with every connection held so, the runner locked up for good.
    let canceller: PostgresClient
    /// Sees every progress report (test contexts record them; the runner's board keeps only the last).
    let onProgress: (@Sendable (_ processed: Int64, _ total: Int64?) -> Void)?

    init(
        jobID: Int64, lease: Int64, kind: String, queue: String, attempt: Int32, maxAttempts: Int32, meta: String,
        requestID: String?, runnerLogger: Logger, postgres: PostgresClient, canceller: PostgresClient? = nil,
        cancelsStatements: Bool, board: ProgressBoard, onProgress: (@Sendable (Int64, Int64?) -> Void)? = nil
    ) {
        self.onProgress = onProgress
        self.jobID = jobID
        self.lease = lease
        self.kind = kind
        self.queue = queue
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.meta = meta
        self.traceParent = TraceParent.inMeta(meta)
        self.requestID = requestID
        self.runnerLogger = runnerLogger
        self.postgres = postgres
        self.canceller = canceller ?? postgres
        self.cancelsStatements = cancelsStatements
        self.board = board
    }

    /// How long a cancelled statement's connection waits for its cancel to be sent. Past it, the connection is
    /// closed rather than given back to the pool (a late cancel would hit the next borrower's statement).
    static let cancelDelivery = Duration.seconds(5)

    /// The claim this attempt holds.
    public var claim: Claim { Claim(jobID: self.jobID, lease: self.lease) }

    /// A logger with `job.id`, `job.kind`, `job.attempt`, `job.lease` (and `request.id` and `trace_id` when the job
    /// has them). Made
    /// on each use (the metadata is set in one step); keep it in a local when logging a lot.
    public var logger: Logger {
        var logger = self.runnerLogger
        var metadata = logger.handler.metadata
        metadata["job.id"] = "\(self.jobID)"
        metadata["job.kind"] = "\(self.kind)"
        metadata["job.attempt"] = "\(self.attempt)"
        metadata["job.lease"] = "\(self.lease)"
        // Kept short and printable: a job inserted by SQL may carry anything there, and it goes on every line.
        if let requestID = self.requestID {
            metadata["request.id"] = "\(String(requestID.prefix(128).unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) }))"
        }
        if let traceParent = self.traceParent { metadata["trace_id"] = "\(traceParent.traceID)" }
        logger.handler.metadata = metadata
        return logger
    }

    /// Reports progress. Cheap: it records the numbers; the runner writes them at most every 500 ms per job,
    /// and once more when the job ends.
    public func progress(processed: Int64, total: Int64? = nil) {
        self.board.update(self.claim, processed: processed, total: total)
        self.onProgress?(processed, total)
    }

    /// A context for running a handler outside a runner, as a unit test does (the `SkipperTesting` product wraps
    /// it): progress reports go to `onProgress`; `postgres` is the handler's database (a client that is not running
    /// makes its queries wait, so pass a running one if the handler queries). Cancelling the task that runs the
    /// handler is cancelling the job.
    public static func forTesting(
        jobID: Int64 = 1, lease: Int64 = 1, kind: String, queue: String = "default", attempt: Int32 = 1,
        maxAttempts: Int32 = 3, meta: String = "{}", requestID: String? = nil, logger: Logger, postgres: PostgresClient,
        onProgress: @escaping @Sendable (_ processed: Int64, _ total: Int64?) -> Void = { _, _ in }
    ) -> JobContext {
        let board = ProgressBoard()
        board.start(Claim(jobID: jobID, lease: lease))
        return JobContext(
            jobID: jobID, lease: lease, kind: kind, queue: queue, attempt: attempt, maxAttempts: maxAttempts, meta: meta,
            requestID: requestID, runnerLogger: logger, postgres: postgres, cancelsStatements: true, board: board,
            onProgress: onProgress)
    }

    /// Leases a connection whose in-flight query is cancelled on the server (`pg_cancel_backend`) when this task is
    /// cancelled, so a long statement stops at once instead of running to its end. In pooled mode (`DB_POOLER`, `POLL_ONLY`)
    /// nothing is cancelled by pid: cancellation reaches the handler between statements.
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try Task.checkCancellation()
        let client = self.postgres
        let logger = self.runnerLogger
        guard self.cancelsStatements else {
            return try await client.withConnection { connection in
                do {
                    return try await body(connection)
                } catch {
                    if Task.isCancelled { throw CancellationError() }
                    throw error
                }
            }
        }
        let canceller = self.canceller
        return try await client.withConnection { connection in
            var pid: Int32 = 0
            for try await value in try await connection.query("SELECT pg_backend_pid()", logger: logger).decode(Int32.self) {
                pid = value
            }
            let backend = pid
            let cancel = Mutex<Task<Void, Never>?>(nil)
            // The connection goes back to the pool only once the cancel request has been delivered: a late one would
            // otherwise hit whatever the next borrower runs on this backend (such as the job's own clean-up). If it
            // cannot be delivered in time, the connection is closed instead (its backend ends with it).
            @Sendable func settle() async {
                guard let task = cancel.withLock({ $0 }) else { return }
                let delivered = await withTaskGroup(of: Bool.self) { group in
                    group.addTask { await task.value; return true }
                    group.addTask { try? await Task.sleep(for: Self.cancelDelivery); return false }
                    defer { group.cancelAll() }
                    return await group.next() ?? false
                }
                if !delivered {
                    task.cancel()
                    logger.warning(
                        "could not send a statement's cancel in time; closing its connection",
                        metadata: ["backend.pid": "\(backend)"])
                    try? await connection.close()
                }
            }
            do {
                let value = try await withTaskCancellationHandler {
                    try await body(connection)
                } onCancel: {
                    cancel.withLock {
                        $0 = Task {
                            do {
                                try await canceller.perform("SELECT pg_cancel_backend(\(backend))", logger: logger)
                            } catch {
                                // Not sent (the control connections log in as another role, say): the statement
                                // runs to its end, or until the connection is closed.
                                logger.warning(
                                    "could not cancel a stopped job's statement",
                                    metadata: ["backend.pid": "\(backend)", "error": "\(describe(error))"])
                            }
                        }
                    }
                }
                await settle()
                return value
            } catch {
                await settle()
                // A statement cancelled for us surfaces as a server error; the caller should see cancellation.
                if Task.isCancelled { throw CancellationError() }
                throw error
            }
        }
    }

    /// Runs `body` in a transaction that first checks, and locks until it ends, that this attempt still holds its
    /// claim (the job RUNNING under this lease): writes that must happen at most once per job, such as publishing
    /// its results, go here. A superseded attempt (its runner was presumed dead and the job rescued) gets
    /// ``ClaimLost`` and writes nothing; a job someone asked to cancel gets `CancellationError` and writes nothing (a
    /// cancel that comes while the transaction runs waits for it, and the job keeps what it committed); and while the
    /// transaction runs, nobody can rescue or finish the job.
    public func withFencedTransaction<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let claim = self.claim
        let logger = self.runnerLogger
        do {
            return try await self.withConnection { connection in
                try await connection.withTransaction(logger: logger) { connection in
                    let rows = try await connection.query(
                        """
                        SELECT cancel_requested_at IS NOT NULL FROM skipper.jobs
                        WHERE id = \(claim.jobID) AND lease = \(claim.lease) AND status = 'RUNNING' AND finished_at IS NULL
                        FOR UPDATE
                        """,
                        logger: logger)
                    var held: Bool?
                    for try await cancelRequested in rows.decode(Bool.self) { held = !cancelRequested }
                    guard let held else { throw ClaimLost(claim: claim) }
                    guard held else { throw CancellationError() }
                    return try await body(connection)
                }
            }
        } catch let error as PostgresTransactionError {
            // The error from inside (ClaimLost, the body's own), rather than postgres-nio's wrapper.
            if let inner = error.closureError { throw inner }
            throw error
        }
    }
}

/// This attempt no longer holds its claim: the job was rescued (its runner presumed dead), released or finished by
/// another path. Whatever it was about to write must not be written.
public struct ClaimLost: Error, CustomStringConvertible {
    public let claim: Claim
    public var description: String { "job \(self.claim.jobID) is no longer held by this attempt (lease \(self.claim.lease))" }
}

/// The latest progress of each running claim, written in batches by the runner's progress flusher.
final class ProgressBoard: Sendable {
    struct Entry: Sendable, Equatable {
        var processed: Int64
        var total: Int64?
        var dirty: Bool
    }

    private let entries = Mutex<[Claim: Entry]>([:])

    /// A claim started: its progress is tracked from here.
    func start(_ claim: Claim) {
        self.entries.withLock { $0[claim] = Entry(processed: 0, total: nil, dirty: false) }
    }

    func update(_ claim: Claim, processed: Int64, total: Int64?) {
        self.entries.withLock { entries in
            guard var entry = entries[claim] else { return }
            entry.processed = processed
            if let total { entry.total = total }
            entry.dirty = true
            entries[claim] = entry
        }
    }

    /// Takes every changed entry and marks it written; a total of -1 means unknown.
    func takeDirty() -> [(claim: Claim, processed: Int64, total: Int64)] {
        self.entries.withLock { entries in
            var changed: [(claim: Claim, processed: Int64, total: Int64)] = []
            for (claim, entry) in entries where entry.dirty {
                changed.append((claim, entry.processed, entry.total ?? -1))
                entries[claim]?.dirty = false
            }
            return changed
        }
    }

    /// Removes a finished claim and returns its last numbers, for the final write. Always returned, even when the
    /// flusher took them: its write may still be in flight and lose to the completion, which is fenced.
    func finish(_ claim: Claim) -> (processed: Int64, total: Int64?)? {
        self.entries.withLock { entries in
            guard let entry = entries.removeValue(forKey: claim), entry.dirty || entry.processed > 0 else { return nil }
            return (entry.processed, entry.total)
        }
    }
}
