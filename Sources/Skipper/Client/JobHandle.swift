import Foundation
import Logging
import PostgresNIO

/// A job of `Handler`'s kind, as the typed API returns it: its id, its status, its cancel, and its result awaited
/// and decoded as the handler's `Output`.
public struct JobHandle<Handler: JobHandler>: Sendable {
    /// The job's id.
    public let id: Int64
    /// False when a QUEUED job with the same unique key existed: this handle is that job.
    public let inserted: Bool
    let store: JobStore

    init(id: Int64, inserted: Bool, store: JobStore) {
        self.id = id
        self.inserted = inserted
        self.store = store
    }

    /// Its status now; nil when the job is gone (pruned by retention).
    public func status() async throws -> JobStatus? {
        try await self.store.status(id: self.id)
    }

    /// Its whole row now; nil when the job is gone.
    public func record() async throws -> JobRecord? {
        try await self.store.job(id: self.id)
    }

    /// Asks for the job to stop (see ``JobStore/cancel(id:)``).
    public func cancel() async throws -> CancelOutcome {
        try await self.store.cancel(id: self.id)
    }
}

/// Why awaiting a job's result gave no result.
public enum JobResultError: Error, CustomStringConvertible, Equatable {
    /// The job ended FAILED; `error` is its last attempt's error.
    case failed(id: Int64, error: String)
    /// The job ended CANCELLED.
    case cancelled(id: Int64)
    /// The job had not finished within the wait; `status` is where it was.
    case timedOut(id: Int64, status: JobStatus?)
    /// The job does not exist (never did, or pruned).
    case notFound(id: Int64)
    /// Its result is not the handler's `Output`.
    case undecodable(id: Int64, message: String)

    public var description: String {
        switch self {
        case .failed(let id, let error): return "job \(id) failed: \(error)"
        case .cancelled(let id): return "job \(id) was cancelled"
        case .timedOut(let id, let status): return "job \(id) did not finish in time (\(status.map { "\($0)" } ?? "gone"))"
        case .notFound(let id): return "job \(id) does not exist"
        case .undecodable(let id, let message): return "job \(id)'s result does not decode: \(message)"
        }
    }
}

extension JobHandle where Handler.Output: Decodable {
    /// Waits until the job finishes and returns its result as the handler's `Output` (nil when it returned none);
    /// throws ``JobResultError`` when it failed, was cancelled, or did not finish within `timeout`.
    ///
    /// It listens on `skipper_events` and looks at the job once a second: a job enqueued with
    /// ``JobOptions/announceFinish`` (or one that fails, is stopped or reports progress) is announced by its runner
    /// and seen at once; any other within the second. Holds one pooled connection while it waits, and does all its
    /// reading on it (none other is needed, so waiters cannot starve the pool of the connections they wait for).
    public func result(timeout: Duration = .seconds(60)) async throws -> Handler.Output? {
        try await self.result(timeout: timeout, lookEvery: .seconds(1))
    }

    func result(timeout: Duration, lookEvery: Duration) async throws -> Handler.Output? {
        let deadline = ContinuousClock.now + timeout
        let id = self.id, client = self.store.client, logger = self.store.logger
        // Behind a transaction-pooling PgBouncer a LISTEN would stay on a server session others borrow next: there it
        // only looks, borrowing a connection for each look.
        let pooled = self.store.pooled
        let finished: FinishedJob?
        do {
            // Bounded as a whole, the wait for a pooled connection included.
            finished = try await abandoningAfter(timeout + .seconds(1)) {
                if pooled {
                    while true {
                        if let done = try await client.withConnection({ try await FinishedJob.look(id, on: $0, logger: logger) }) { return done }
                        guard ContinuousClock.now < deadline else { return nil }
                        try await Task.sleep(until: min(deadline, ContinuousClock.now + lookEvery))
                    }
                }
                return try await client.withConnection { connection in
                    try await connection.listen(on: Channel.events) { notifications in
                        // A first look once LISTEN is in place: a finish before it is seen here, one after it is announced.
                        if let done = try await FinishedJob.look(id, on: connection, logger: logger) { return done }
                        return try await Self.wait(
                            id, notifications: notifications, connection: connection, deadline: deadline, lookEvery: lookEvery, logger: logger)
                    }
                }
            }
        } catch is TimeLimitExceeded {
            finished = nil
        }
        guard let job = finished else {
            throw JobResultError.timedOut(id: id, status: try await self.store.status(id: id))
        }
        switch job.status {
        case .completed:
            guard let result = job.result, result != "null" else { return nil }
            do {
                return try JSONDecoder().decode(Handler.Output.self, from: Data(result.utf8))
            } catch {
                throw JobResultError.undecodable(id: id, message: "\(error)")
            }
        case .cancelled:
            throw JobResultError.cancelled(id: id)
        default:
            throw JobResultError.failed(id: id, error: job.lastError)
        }
    }

    private static func wait(
        _ id: Int64, notifications: PostgresNotificationSequence, connection: PostgresConnection, deadline: ContinuousClock.Instant,
        lookEvery: Duration, logger: Logger
    ) async throws -> FinishedJob? {
        try await withThrowingTaskGroup(of: WaitEvent.self) { group in
            group.addTask {
                for try await notification in notifications where notification.payload == String(id) {
                    if let done = try await FinishedJob.look(id, on: connection, logger: logger) { return .finished(done) }
                }
                return .listenerEnded
            }
            group.addTask {
                while ContinuousClock.now < deadline {
                    try await Task.sleep(until: min(deadline, ContinuousClock.now + lookEvery))
                    if let done = try await FinishedJob.look(id, on: connection, logger: logger) { return .finished(done) }
                }
                return .deadline
            }
            defer { group.cancelAll() }
            // The notifications ending early (the connection dropped) is not the deadline: the looks go on.
            while let event = try await group.next() {
                switch event {
                case .finished(let job): return job
                case .deadline: return nil
                case .listenerEnded: continue
                }
            }
            return nil
        }
    }
}

/// What ends one of the waits of ``JobHandle/result(timeout:)``.
private enum WaitEvent: Sendable {
    case finished(FinishedJob)
    case listenerEnded
    case deadline
}

/// What ``JobHandle/result(timeout:)`` reads of a finished job, on its own connection.
struct FinishedJob: Sendable {
    let status: JobStatus
    let result: String?
    let lastError: String

    /// The job once it has finished, nil while it has not; throws `notFound` when there is no such job.
    static func look(_ id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> FinishedJob? {
        let rows = try await connection.query(
            """
            SELECT status, result::text, coalesce(errors -> -1 ->> 'error', 'no error recorded')
            FROM skipper.jobs WHERE id = \(id)
            """,
            logger: logger)
        for try await (status, result, error) in rows.decode((JobStatus, String?, String).self) {
            return status.isFinished ? FinishedJob(status: status, result: result, lastError: error) : nil
        }
        throw JobResultError.notFound(id: id)
    }
}

/// The meta key that asks runners to announce a job's finish on `skipper_events` (``JobOptions/announceFinish``).
let announceFinishKey = "skipper.announce_finish"

extension SkipperClient {
    /// Enqueues a job of `handler`'s kind: its arguments are checked by the handler (``JobHandler/check(_:)``)
    /// before anything is written, as the runner will decode them, and the handle can await its typed result.
    @discardableResult
    public func enqueue<Handler: JobHandler>(
        _ handler: Handler, _ args: Handler.Args, options: JobOptions = JobOptions()
    ) async throws -> JobHandle<Handler> where Handler.Args: Encodable {
        let (json, options) = try Self.checked(handler, args, options)
        let job = try await self.enqueue(kind: Handler.kind, argsJSON: json, options: options)
        return JobHandle(id: job.id, inserted: job.inserted, store: self.store)
    }

    /// Enqueues many jobs of `handler`'s kind with one statement, each checked first; returns the handles of those
    /// inserted (unique-key duplicates are skipped).
    @discardableResult
    public func enqueueMany<Handler: JobHandler>(
        _ handler: Handler, _ args: [Handler.Args], options: JobOptions = JobOptions()
    ) async throws -> [JobHandle<Handler>] where Handler.Args: Encodable {
        let jobs = try args.map { args in
            let (json, options) = try Self.checked(handler, args, options)
            return NewJob(kind: Handler.kind, args: json, options: options)
        }
        return try await self.enqueueMany(jobs).map { JobHandle(id: $0, inserted: true, store: self.store) }
    }

    /// A handle on job `id`, of `handler`'s kind (to await a job enqueued elsewhere).
    public func handle<Handler: JobHandler>(_ handler: Handler.Type, id: Int64) -> JobHandle<Handler> {
        JobHandle(id: id, inserted: false, store: self.store)
    }

    /// `args` as the JSON a row holds, refused (``ArgumentsError``) unless it is an object that decodes back into
    /// the handler's `Args` and passes its check.
    static func checked<Handler: JobHandler>(
        _ handler: Handler, _ args: Handler.Args, _ options: JobOptions
    ) throws -> (String, JobOptions) where Handler.Args: Encodable {
        let json = try Self.encode(args)
        guard json.first == "{" else { throw ArgumentsError(field: "", message: "must encode as a JSON object, not \(json.prefix(40))") }
        try AnyJobHandler(handler).validate(json)
        return (json, options)
    }
}

extension TransactionEnqueuer {
    /// Enqueues a checked job of `handler`'s kind in the transaction (see ``SkipperClient/enqueue(_:_:options:)``).
    @discardableResult
    public func enqueue<Handler: JobHandler>(
        _ handler: Handler, _ args: Handler.Args, options: JobOptions = JobOptions()
    ) async throws -> JobHandle<Handler> where Handler.Args: Encodable {
        let (json, options) = try SkipperClient.checked(handler, args, options)
        let job = try await self.enqueue(kind: Handler.kind, argsJSON: json, options: options)
        return JobHandle(id: job.id, inserted: job.inserted, store: self.store)
    }
}
