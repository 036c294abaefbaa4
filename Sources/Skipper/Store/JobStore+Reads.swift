import Foundation
import Logging
import PostgresNIO

/// Filters of a job listing; nil means any.
public struct JobFilter: Sendable, Equatable {
    public var status: JobStatus?
    public var kind: String?
    public var queue: String?
    /// A JSON object: only jobs whose arguments contain it (`{"merchant_id": 42}`, PostgreSQL's `@>`).
    public var args: String?

    public init(status: JobStatus? = nil, kind: String? = nil, queue: String? = nil, args: String? = nil) {
        self.status = status
        self.kind = kind
        self.queue = queue
        self.args = args
    }

    /// The filter as SQL conditions on `skipper.jobs j` (and jobs older than `after`), every value bound in `binds`.
    func conditions(_ binds: inout PostgresBindings, after: Int64? = nil) throws -> [String] {
        var conditions: [String] = []
        func bind(_ sql: String, _ value: some PostgresEncodable & Sendable) throws {
            try binds.append(value)
            conditions.append(sql.replacingOccurrences(of: "?", with: "$\(binds.count)"))
        }
        if let status = self.status {
            try bind("j.status = ?", status)
            // Unfinished jobs live in the active partition only: say so, and the other partitions are not read; for
            // finished ones, the active partition's list indexes (of jobs finished before the cutover) apply.
            conditions.append(status.isFinished ? "j.finished_at IS NOT NULL" : "j.finished_at IS NULL")
        }
        if let kind = self.kind { try bind("j.kind = ?", kind) }
        if let queue = self.queue { try bind("j.queue = ?", queue) }
        if let args = self.args { try bind("j.args @> ?::jsonb", args) }
        if let after { try bind("j.id < ?", after) }
        return conditions
    }
}

/// One page of a listing, newest first, with the cursor of the next page.
public struct JobPage: Sendable {
    /// The jobs, newest first.
    public let jobs: [JobRecord]
    /// Pass as `after` for the next page; nil on the last page.
    public let next: Int64?
}

/// What a retry did.
public enum RetryOutcome: Sendable, Equatable {
    /// Back to QUEUED with a fresh attempt budget.
    case queued(JobRecord)
    /// Only FAILED and CANCELLED jobs can be retried.
    case notRetryable(JobStatus)
    /// Another QUEUED job holds the job's unique key.
    case uniqueKeyTaken(String)
    /// No such job.
    case notFound
}

/// Jobs per queue and status, for metrics.
public struct QueueDepth: Sendable, Equatable {
    public let queue: String
    public let status: JobStatus
    public let jobs: Int64
}

extension JobStore {
    // MARK: - Reading jobs (the API's resource)

    /// The job, or nil when there is no such job.
    public func job(id: Int64) async throws -> JobRecord? {
        let rows = try await self.client.query(
            "SELECT \(unescaped: JobRecord.columns) FROM skipper.jobs j WHERE j.id = \(id)", logger: self.logger)
        for try await row in rows { return try JobRecord(row: row) }
        return nil
    }

    /// The job as it is now, read cheaply from `known`: while its status, attempt and cancel request are the same,
    /// only its progress is read (its arguments, errors and result cannot have changed); otherwise the whole row.
    /// Nil when the job is gone.
    public func refresh(_ known: JobRecord) async throws -> JobRecord? {
        let rows = try await self.client.query(
            "SELECT status, attempt, cancel_requested_at, processed, total FROM skipper.jobs WHERE id = \(known.id)",
            logger: self.logger)
        for try await (status, attempt, cancelRequestedAt, processed, total) in rows.decode((JobStatus, Int32, Date?, Int64, Int64?).self) {
            guard status == known.status, attempt == known.attempt, cancelRequestedAt == known.cancelRequestedAt else {
                return try await self.job(id: known.id)
            }
            var job = known
            job.processed = processed
            job.total = total
            return job
        }
        return nil
    }

    /// A page of jobs, newest first, older than `after`. Each filter is served by its `(column, id)` index. The page
    /// also ends once its jobs hold `byteBudget` bytes of JSON (args, errors, result, meta), with a cursor to the
    /// rest, so 1,000 jobs of 1 MiB arguments never make one 1 GB response; rows past it are not kept.
    public func list(_ filter: JobFilter, limit: Int, after: Int64?, byteBudget: Int = 4 << 20) async throws -> JobPage {
        var binds = PostgresBindings()
        let conditions = try filter.conditions(&binds, after: after)
        try binds.append(Int64(limit + 1))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        // Only fixed fragments are concatenated; every value is a bind.
        let query = PostgresQuery(
            unsafeSQL: "SELECT \(JobRecord.columns) FROM skipper.jobs j \(whereClause) ORDER BY j.id DESC LIMIT $\(binds.count)",
            binds: binds)
        var jobs: [JobRecord] = []
        var bytes = 0
        for try await row in try await self.client.query(query, logger: self.logger) {
            let job = try JobRecord(row: row)
            if jobs.count == limit || (!jobs.isEmpty && bytes + job.jsonBytes > byteBudget) {
                return JobPage(jobs: jobs, next: jobs.last?.id)
            }
            bytes += job.jsonBytes
            jobs.append(job)
        }
        return JobPage(jobs: jobs, next: nil)
    }

    /// True when some runner has ever registered `kind` (the durable registry `skipper.kinds`).
    public func isKnownKind(_ kind: String) async throws -> Bool {
        let rows = try await self.client.query(
            "SELECT EXISTS (SELECT 1 FROM skipper.kinds WHERE kind = \(kind))", logger: self.logger)
        for try await known in rows.decode(Bool.self) { return known }
        return false
    }

    /// Every kind some runner has registered, sorted.
    public func knownKinds() async throws -> [String] {
        var kinds: [String] = []
        for try await kind in try await self.client.query("SELECT kind FROM skipper.kinds ORDER BY kind", logger: self.logger)
            .decode(String.self)
        {
            kinds.append(kind)
        }
        return kinds
    }

    // MARK: - Retry

    /// Puts a FAILED or CANCELLED job back to QUEUED with a fresh attempt budget; its error history stays.
    public func retry(id: Int64) async throws -> RetryOutcome {
        do {
            let retried = try await self.retryingMovedRows { () -> JobRecord? in
                let rows = try await self.client.query(
                """
                WITH old AS (
                  SELECT id, queue, status, finished_at FROM skipper.jobs WHERE id = \(id) AND status IN ('FAILED', 'CANCELLED')),
                retried AS (
                  UPDATE skipper.jobs j
                  SET status = 'QUEUED', attempt = 0, run_at = now(), runner_id = NULL, started_at = NULL,
                      finished_at = NULL, cancel_requested_at = NULL, processed = 0, total = NULL, result = NULL
                  FROM old WHERE j.id = old.id AND j.status IN ('FAILED', 'CANCELLED')
                  RETURNING j.*),
                \(unescaped: Self.countFinished(from: "(SELECT * FROM old WHERE EXISTS (SELECT 1 FROM retried)) o", sign: -1))
                SELECT \(unescaped: JobRecord.columns) FROM retried j
                """,
                logger: self.logger)
                for try await row in rows { return try JobRecord(row: row) }
                return nil
            }
            if let retried { return .queued(retried) }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            let key = try await self.uniqueKey(id: id) ?? ""
            return .uniqueKeyTaken(key)
        }
        guard let status = try await self.status(id: id) else { return .notFound }
        return .notRetryable(status)
    }

    private func uniqueKey(id: Int64) async throws -> String? {
        let rows = try await self.client.query("SELECT unique_key FROM skipper.jobs WHERE id = \(id)", logger: self.logger)
        for try await key in rows.decode(String?.self) { return key }
        return nil
    }

    // MARK: - Metrics

    /// QUEUED and RUNNING jobs per queue: what a dashboard needs, read through the two small partial indexes
    /// rather than by counting the whole table on every scrape.
    public func depth() async throws -> [QueueDepth] {
        let rows = try await self.client.query(
            """
            SELECT queue, 'QUEUED', count(*) FROM skipper.jobs WHERE status = 'QUEUED' AND finished_at IS NULL GROUP BY queue
            UNION ALL
            SELECT queue, 'RUNNING', count(*) FROM skipper.jobs WHERE status = 'RUNNING' AND finished_at IS NULL GROUP BY queue
            """,
            logger: self.logger)
        var depth: [QueueDepth] = []
        for try await (queue, status, jobs) in rows.decode((String, JobStatus, Int64).self) {
            depth.append(QueueDepth(queue: queue, status: status, jobs: jobs))
        }
        return depth
    }
}
