import Foundation
import Logging
import PostgresNIO

/// Every SQL statement of the queue. Values are always bound parameters; a runner's writes to a job it holds are
/// fenced on (id, attempt, runner_id, status RUNNING), so a runner presumed dead cannot overwrite a newer attempt.
public struct JobStore: Sendable {
    /// The pool every statement runs on.
    public let client: PostgresClient
    let logger: Logger

    /// The channel on which runners announce a job's progress and end (payload: the job id).
    public static let eventsChannel = "skipper_events"

    /// A store on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    // MARK: - Enqueue

    /// Inserts one job, on `connection` (inside the caller's transaction) when given, else on a pooled connection.
    /// With a unique key that a QUEUED job already has, returns that job instead.
    func insert(kind: String, args: String, options: JobOptions, on connection: PostgresConnection?) async throws -> EnqueuedJob {
        try await self.insertOrFindQueued(kind: kind, args: args, options: options, columns: ("j.id", "j.id"), on: connection) { row, inserted in
            EnqueuedJob(id: try row.makeRandomAccess()[1].decode(Int64.self), inserted: inserted)
        }
    }

    /// Inserts one job with a unique key like ``insert(kind:args:options:on:)`` and returns the row in the same
    /// statement (the API's submit; keyless submissions go through ``SubmitBatcher``).
    func submitUnique(kind: String, args: String, options: JobOptions) async throws -> (job: EnqueuedJob, record: JobRecord) {
        try await self.insertOrFindQueued(
            kind: kind, args: args, options: options, columns: (JobRecord.insertedColumns, JobRecord.columns), on: nil
        ) { row, inserted in
            let record = try JobRecord(row: row, from: 1)
            return (EnqueuedJob(id: record.id, inserted: inserted), record)
        }
    }

    /// The INSERT that yields to a QUEUED job with the same unique key: one row, `(inserted, columns…)`, of the new
    /// job (`columns.inserted`, on the inserted row `j`) or of the QUEUED twin (`columns.existing`, on `skipper.jobs j`).
    private func insertOrFindQueued<T>(
        kind: String, args: String, options: JobOptions, columns: (inserted: String, existing: String),
        on connection: PostgresConnection?, _ decode: (PostgresRow, Bool) throws -> T
    ) async throws -> T {
        let meta = try Self.json(options.meta)
        let query: PostgresQuery = """
            WITH ins AS (
              INSERT INTO skipper.jobs (queue, kind, args, priority, run_at, max_attempts, unique_key, meta)
              VALUES (\(options.queue), \(kind), \(args)::jsonb, \(options.priority), coalesce(\(options.runAt), now()),
                      \(options.maxAttempts), \(options.uniqueKey), \(meta)::jsonb)
              ON CONFLICT (unique_key) WHERE status = 'QUEUED' AND unique_key IS NOT NULL DO NOTHING
              RETURNING *)
            SELECT true, \(unescaped: columns.inserted) FROM ins j
            UNION ALL
            SELECT false, \(unescaped: columns.existing) FROM skipper.jobs j
            WHERE j.unique_key = \(options.uniqueKey) AND j.status = 'QUEUED' AND NOT EXISTS (SELECT 1 FROM ins)
            LIMIT 1
            """
        // The statement sees a snapshot taken before a conflicting insert committed, or a queued twin may be claimed
        // meanwhile: then it returns no row, and a new snapshot settles it.
        for _ in 0..<20 {
            for try await row in try await self.run(query, on: connection) {
                return try decode(row, try row.makeRandomAccess()[0].decode(Bool.self))
            }
        }
        throw QueueError.contention("could not insert or find the QUEUED job with unique key \(options.uniqueKey ?? "")")
    }

    /// Inserts many jobs with one statement. Jobs whose unique key already has a QUEUED job are skipped.
    /// Returns the ids inserted.
    package func insertMany(_ jobs: [NewJob], on connection: PostgresConnection?) async throws -> [Int64] {
        guard !jobs.isEmpty else { return [] }
        let queues = jobs.map(\.options.queue)
        let kinds = jobs.map(\.kind)
        let args = jobs.map(\.args)
        let priorities = jobs.map(\.options.priority)
        // Arrays cannot hold NULLs here: -1 means "now" and "" means no key.
        let runAts = jobs.map { $0.options.runAt?.timeIntervalSince1970 ?? -1 }
        let maxAttempts = jobs.map(\.options.maxAttempts)
        let keys = jobs.map { $0.options.uniqueKey ?? "" }
        let metas = try jobs.map { try Self.json($0.options.meta) }
        let query: PostgresQuery = """
            INSERT INTO skipper.jobs (queue, kind, args, priority, run_at, max_attempts, unique_key, meta)
            SELECT q, k, a::jsonb, p, CASE WHEN r < 0 THEN now() ELSE to_timestamp(r) END, m, nullif(u, ''), e::jsonb
            FROM unnest(\(queues)::text[], \(kinds)::text[], \(args)::text[], \(priorities)::int2[], \(runAts)::float8[],
                        \(maxAttempts)::int4[], \(keys)::text[], \(metas)::text[]) AS t(q, k, a, p, r, m, u, e)
            ON CONFLICT (unique_key) WHERE status = 'QUEUED' AND unique_key IS NOT NULL DO NOTHING
            RETURNING id
            """
        var ids: [Int64] = []
        ids.reserveCapacity(jobs.count)
        for try await id in try await self.run(query, on: connection).decode(Int64.self) { ids.append(id) }
        return ids
    }

    /// Sends one wake-up per queue on `skipper_jobs`, outside any insert transaction.
    func notifyInserted(queues: [String]) async throws {
        try await self.client.query(
            "SELECT pg_notify('skipper_jobs', q) FROM unnest(\(queues)::text[]) AS q", logger: self.logger)
    }

    // MARK: - Cancel

    /// Cancels a job: a QUEUED one becomes CANCELLED at once; a RUNNING one gets `cancel_requested_at` and a
    /// `skipper_cancel` notification for the runner holding it.
    public func cancel(id: Int64) async throws -> CancelOutcome {
        let rows = try await self.client.query(
            """
            WITH c AS (
              UPDATE skipper.jobs SET
                status = CASE WHEN status = 'QUEUED' THEN 'CANCELLED' ELSE status END,
                finished_at = CASE WHEN status = 'QUEUED' THEN now() ELSE finished_at END,
                cancel_requested_at = coalesce(cancel_requested_at, now())
              WHERE id = \(id) AND status IN ('QUEUED', 'RUNNING')
              RETURNING id, status)
            SELECT c.status FROM c
            LEFT JOIN LATERAL (SELECT pg_notify('skipper_cancel', c.id::text) WHERE c.status = 'RUNNING') n ON true
            """,
            logger: self.logger)
        for try await status in rows.decode(String.self) {
            return status == JobStatus.cancelled.rawValue ? .cancelled : .requested
        }
        guard let status = try await self.status(id: id) else { return .notFound }
        return .alreadyFinished(status)
    }

    /// A job's status, or nil when there is no such job.
    public func status(id: Int64) async throws -> JobStatus? {
        let rows = try await self.client.query("SELECT status FROM skipper.jobs WHERE id = \(id)", logger: self.logger)
        for try await status in rows.decode(String.self) { return JobStatus(rawValue: status) }
        return nil
    }

    // MARK: - Helpers

    func run(_ query: PostgresQuery, on connection: PostgresConnection?) async throws -> PostgresRowSequence {
        if let connection { return try await connection.query(query, logger: self.logger) }
        return try await self.client.query(query, logger: self.logger)
    }

    static func json(_ meta: [String: String]) throws -> String {
        meta.isEmpty ? "{}" : String(decoding: try JSONEncoder().encode(meta), as: UTF8.self)
    }
}

/// A job to insert.
public struct NewJob: Sendable {
    /// Which handler runs it.
    public var kind: String
    /// Its arguments as JSON text.
    public var args: String
    /// Queue, priority, schedule, attempts, unique key, meta.
    public var options: JobOptions

    /// A job of `kind` with JSON `args`.
    public init(kind: String, args: String = "{}", options: JobOptions = JobOptions()) {
        self.kind = kind
        self.args = args
        self.options = options
    }
}

/// What a cancel did.
public enum CancelOutcome: Sendable, Equatable {
    /// The job was QUEUED and is now CANCELLED.
    case cancelled
    /// The job is RUNNING; its runner has been asked to cancel it.
    case requested
    /// The job had already finished with this status.
    case alreadyFinished(JobStatus)
    /// No such job.
    case notFound
}

/// Failures of the queue itself.
public enum QueueError: Error, CustomStringConvertible {
    /// A statement kept losing races it retries.
    case contention(String)

    public var description: String {
        switch self {
        case .contention(let message): return message
        }
    }
}
