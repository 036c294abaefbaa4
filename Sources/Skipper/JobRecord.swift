import Foundation
import PostgresNIO

/// A job as a reader sees it: every column a user reads, decoded from one row. The API renders it in Swift (rather
/// than with json_build_object), which keeps PostgreSQL's side of a submit as cheap as the bare INSERT.
public struct JobRecord: Sendable, Equatable {
    public var id: Int64
    public var kind: String
    public var queue: String
    public var status: JobStatus
    public var processed: Int64
    public var total: Int64?
    public var attempt: Int32
    public var maxAttempts: Int32
    public var priority: Int16
    /// JSON text.
    public var args: String
    public var uniqueKey: String?
    public var runAt: Date
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var cancelRequestedAt: Date?
    /// JSON text (an array).
    public var errors: String
    /// JSON text, or nil.
    public var result: String?
    /// JSON text (an object).
    public var meta: String
    public var hasArtifact: Bool
    /// The job's own time limit per attempt, in milliseconds (nil: its kind's, if any).
    public var timeoutMilliseconds: Int32?
    /// How often its handler snoozed it.
    public var snoozed: Int32
    /// The runner that holds it (RUNNING) or last held it.
    public var runnerID: String?

    /// Every column but the artifact flag, in the order `init(row:)` decodes them.
    private static let rowColumns = """
        j.id, j.kind, j.queue, j.status, j.processed, j.total, j.attempt, j.max_attempts, j.priority, j.args::text,
        j.unique_key, j.run_at, j.created_at, j.started_at, j.finished_at, j.cancel_requested_at, j.errors::text,
        j.result::text, j.meta::text, j.timeout_ms, j.snoozed, j.runner_id
        """

    /// The select list that `init(row:)` decodes, for a query on `skipper.jobs j`.
    static let columns = rowColumns + ", EXISTS (SELECT 1 FROM skipper.job_artifacts a WHERE a.job_id = j.id)"

    /// The same for a row just inserted, which cannot have an artifact yet.
    static let insertedColumns = rowColumns + ", false"

    init(row: PostgresRow, from start: Int = 0) throws {
        let cells = row.makeRandomAccess()
        func cell<T: PostgresDecodable>(_ index: Int, _: T.Type) throws -> T { try cells[start + index].decode(T.self) }
        self.id = try cell(0, Int64.self)
        self.kind = try cell(1, String.self)
        self.queue = try cell(2, String.self)
        self.status = try cell(3, JobStatus.self)
        self.processed = try cell(4, Int64.self)
        self.total = try cell(5, Int64?.self)
        self.attempt = try cell(6, Int32.self)
        self.maxAttempts = try cell(7, Int32.self)
        self.priority = try cell(8, Int16.self)
        self.args = try cell(9, String.self)
        self.uniqueKey = try cell(10, String?.self)
        self.runAt = try cell(11, Date.self)
        self.createdAt = try cell(12, Date.self)
        self.startedAt = try cell(13, Date?.self)
        self.finishedAt = try cell(14, Date?.self)
        self.cancelRequestedAt = try cell(15, Date?.self)
        self.errors = try cell(16, String.self)
        self.result = try cell(17, String?.self)
        self.meta = try cell(18, String.self)
        self.timeoutMilliseconds = try cell(19, Int32?.self)
        self.snoozed = try cell(20, Int32.self)
        self.runnerID = try cell(21, String?.self)
        self.hasArtifact = try cell(22, Bool.self)
    }

    /// Roughly how many bytes the job's JSON takes: its jsonb columns and a fixed part for the rest.
    public var jsonBytes: Int {
        512 + self.args.utf8.count + self.errors.utf8.count + (self.result?.utf8.count ?? 0) + self.meta.utf8.count
    }

    /// Percent done: from processed/total when the job reports them, 100 once COMPLETED, else 0.
    public var progress: Double {
        if let total, total > 0 { return min(100, (1000 * Double(self.processed) / Double(total)).rounded() / 10) }
        return self.status == .completed ? 100 : 0
    }
}
