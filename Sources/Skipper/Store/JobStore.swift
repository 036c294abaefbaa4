import Foundation
import Logging
import PostgresNIO

/// The queue's SQL, in this file and its extensions: inserts (`JobStore+Insert`), reads (`+Reads`), the runner's
/// claim, finishes and sweeps (`+Runner`), runners and maintenance (`+Maintenance`). Values are always bound
/// parameters; a runner's writes to a job it holds are fenced on (id, attempt, runner_id, status RUNNING), so a
/// runner presumed dead cannot overwrite a newer attempt. (The shop's jobs keep their own SQL in the Shop module.)
public struct JobStore: Sendable {
    /// The pool every statement runs on.
    public let client: PostgresClient
    let logger: Logger
    /// Whether the hot statements (claim, finish, the API's submit) are prepared once per connection, as they are
    /// on a direct connection. Not behind a transaction-pooling PgBouncer, where a connection's prepared statements
    /// are not another's: there they run as unnamed statements, parsed each time.
    public var prepared = true
    /// Whether `client` goes through a transaction-pooling PgBouncer: then no statement may leave state on its
    /// session (a LISTEN, say), as the next transaction may be another client's. (A store may also go unprepared on
    /// a direct connection, as a polling runner's does.)
    public var pooled = false

    /// A store on `client`; `pooled` behind a transaction-pooling PgBouncer (which implies unprepared statements).
    public init(client: PostgresClient, logger: Logger, prepared: Bool = true, pooled: Bool = false) {
        self.client = client
        self.logger = logger
        self.prepared = prepared && !pooled
        self.pooled = pooled
    }

    /// The rows of `statement`: prepared once per connection, or (``prepared`` false) sent as an unnamed statement.
    func rows<Statement: PostgresPreparedStatement>(of statement: Statement) async throws -> [Statement.Row] {
        var rows: [Statement.Row] = []
        if self.prepared {
            for try await row in try await self.client.execute(statement, logger: self.logger) { rows.append(row) }
        } else {
            let query = PostgresQuery(unsafeSQL: Statement.sql, binds: try statement.makeBindings())
            for row in try await self.committedRows(query) { rows.append(try statement.decodeRow(row)) }
        }
        return rows
    }

    /// The rows of a statement that changes state, collected; behind a transaction-pooling PgBouncer (``pooled``),
    /// inside BEGIN … COMMIT, and returned only once COMMIT has answered.
    ///
    /// A lone statement commits at the protocol's Sync, after PostgreSQL has written its rows and CommandComplete;
    /// postgres-nio ends the row stream at CommandComplete. A server session ended in between (terminated, or
    /// PostgreSQL stopping) rolls the statement back, yet still sends what it had written before its error. On a
    /// direct connection Execute and Sync arrive together and the session ends only after the commit; through
    /// PgBouncer they may arrive apart, and a claim or finish that never committed then looked done (a claimed job
    /// run by two runners, a finished one released and run again; found by a fault test killing server sessions).
    /// Inside a transaction, COMMIT's own answer comes after the commit.
    func committedRows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        if self.pooled {
            do {
                return try await self.client.withTransaction(logger: self.logger) { connection in
                    var rows: [PostgresRow] = []
                    for try await row in try await connection.query(query, logger: self.logger) { rows.append(row) }
                    return rows
                }
            } catch let error as PostgresTransactionError {
                // What went wrong, not the wrapper: callers tell PostgreSQL's refusals (SQLSTATE) from lost connections.
                throw error.beginError ?? error.closureError ?? error.commitError ?? error
            }
        }
        var rows: [PostgresRow] = []
        for try await row in try await self.client.query(query, logger: self.logger) { rows.append(row) }
        return rows
    }

    // MARK: - Cancel

    /// Cancels a job: a QUEUED one becomes CANCELLED at once; a RUNNING one gets `cancel_requested_at` and a
    /// `skipper_cancel` notification for the runner holding it.
    public func cancel(id: Int64) async throws -> CancelOutcome {
        let outcome = try await self.retryingMovedRows { () -> CancelOutcome? in
            let rows = try await self.committedRows(
            """
            WITH c AS (
              UPDATE skipper.jobs SET
                status = CASE WHEN status = 'QUEUED' THEN 'CANCELLED' ELSE status END,
                finished_at = CASE WHEN status = 'QUEUED' THEN now() ELSE finished_at END,
                cancel_requested_at = coalesce(cancel_requested_at, now())
              WHERE id = \(id) AND status IN ('QUEUED', 'RUNNING') AND finished_at IS NULL
              RETURNING id, status, queue, finished_at),
            \(unescaped: Self.countFinished(from: "c"))
            SELECT c.status FROM c
            LEFT JOIN LATERAL (SELECT pg_notify(\(Channel.cancel), c.id::text) WHERE c.status = 'RUNNING') n ON true
            """)
            guard let row = rows.first else { return nil }
            return try row.decode(JobStatus.self) == .cancelled ? .cancelled : .requested
        }
        if let outcome { return outcome }
        guard let status = try await self.status(id: id) else { return .notFound }
        return .alreadyFinished(status)
    }

    /// A job's status, or nil when there is no such job.
    public func status(id: Int64) async throws -> JobStatus? {
        let rows = try await self.client.query("SELECT status FROM skipper.jobs WHERE id = \(id)", logger: self.logger)
        for try await status in rows.decode(JobStatus.self) { return status }
        return nil
    }

    // MARK: - Helpers

    /// The rows of `query` on `connection` (inside the caller's transaction), else committed on a pooled connection.
    func run(_ query: PostgresQuery, on connection: PostgresConnection?) async throws -> [PostgresRow] {
        guard let connection else { return try await self.committedRows(query) }
        var rows: [PostgresRow] = []
        for try await row in try await connection.query(query, logger: self.logger) { rows.append(row) }
        return rows
    }

    static func json(_ meta: [String: String]) throws -> String {
        meta.isEmpty ? "{}" : String(decoding: try JSONEncoder().encode(meta), as: UTF8.self)
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
