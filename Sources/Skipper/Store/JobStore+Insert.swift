import Foundation
import Logging
import PostgresNIO

/// Every INSERT into `skipper.jobs`: one job (alone or in the caller's transaction), one job returning its row, many
/// jobs in one statement, and the prepared statements of the API's grouped submit.
extension JobStore {
    /// Inserts one job, on `connection` (inside the caller's transaction) when given, else on a pooled connection.
    /// With a unique key that a QUEUED job already has, returns that job instead.
    func insert(kind: String, args: String, options: JobOptions, on connection: PostgresConnection?) async throws -> EnqueuedJob {
        try await self.insertOrFindQueued(kind: kind, args: args, options: options, columns: ("j.id", "j.id"), on: connection) { row, inserted in
            EnqueuedJob(id: try row.makeRandomAccess()[1].decode(Int64.self), inserted: inserted)
        }
    }

    /// Inserts one job with a unique key like ``insert(kind:args:options:on:)`` and returns the row in the same
    /// statement (the API's submit; keyless submissions go through ``SubmitBatcher`` and ``insertReturning(_:)``).
    func submitUnique(kind: String, args: String, options: JobOptions) async throws -> (job: EnqueuedJob, record: JobRecord) {
        try await self.insertOrFindQueued(
            kind: kind, args: args, options: options, columns: (JobRecord.insertedColumns, JobRecord.columns), on: nil
        ) { row, inserted in
            let record = try JobRecord(row: row, from: 1)
            return (EnqueuedJob(id: record.id, inserted: inserted), record)
        }
    }

    /// The INSERT that yields to a QUEUED job of the same kind with the same unique key: one row,
    /// `(inserted, columns…)`, of the new job (`columns.inserted`, on the inserted row `j`) or of the QUEUED twin
    /// (`columns.existing`). Coalescing never delays work: the twin is moved earlier (its `run_at` and `priority`
    /// become the earlier and more urgent of the two), so a twin queued far in the future (by a client squatting a
    /// key, say) cannot hold back the job that coalesces into it.
    private func insertOrFindQueued<T>(
        kind: String, args: String, options: JobOptions, columns: (inserted: String, existing: String),
        on connection: PostgresConnection?, _ decode: (PostgresRow, Bool) throws -> T
    ) async throws -> T {
        let meta = try Self.json(options.meta)
        let query: PostgresQuery = """
            WITH ins AS (
              INSERT INTO skipper.jobs (queue, kind, args, priority, run_at, max_attempts, unique_key, meta, timeout_ms)
              VALUES (\(options.queue), \(kind), \(args)::jsonb, \(options.priority), coalesce(\(options.runAt), now()),
                      \(options.maxAttempts), \(options.uniqueKey), \(meta)::jsonb, \(options.timeoutMilliseconds))
              ON CONFLICT (kind, unique_key, finished_at) WHERE status = 'QUEUED' AND unique_key IS NOT NULL DO NOTHING
              RETURNING *),
            sooner AS (
              UPDATE skipper.jobs j
              SET run_at = least(j.run_at, coalesce(\(options.runAt), now())), priority = least(j.priority, \(options.priority))
              WHERE j.status = 'QUEUED' AND j.finished_at IS NULL AND j.kind = \(kind) AND j.unique_key = \(options.uniqueKey)
                AND NOT EXISTS (SELECT 1 FROM ins)
                AND (j.run_at > coalesce(\(options.runAt), now()) OR j.priority > \(options.priority))
              RETURNING j.*)
            SELECT true, \(unescaped: columns.inserted) FROM ins j
            UNION ALL
            SELECT false, \(unescaped: columns.existing) FROM sooner j
            UNION ALL
            SELECT false, \(unescaped: columns.existing) FROM skipper.jobs j
            WHERE j.status = 'QUEUED' AND j.finished_at IS NULL AND j.kind = \(kind) AND j.unique_key = \(options.uniqueKey)
              AND NOT EXISTS (SELECT 1 FROM ins) AND NOT EXISTS (SELECT 1 FROM sooner)
            LIMIT 1
            """
        // The statement sees a snapshot taken before a conflicting insert committed, or a queued twin may be claimed
        // meanwhile: then it returns no row, and a new snapshot settles it.
        for _ in 0..<20 {
            let found = try await self.retryingMovedRows { () -> T? in
                for row in try await self.run(query, on: connection) {
                    return try decode(row, try row.makeRandomAccess()[0].decode(Bool.self))
                }
                return nil
            }
            if let found { return found }
        }
        throw QueueError.contention("could not insert or find the QUEUED \(kind) job with unique key \(options.uniqueKey ?? "")")
    }

    /// Inserts one job without a unique key on a pooled connection (the library's lone enqueue): a prepared INSERT,
    /// with `notify` also the wake-up of its queue, sent by the same statement (delivered at its commit) instead of
    /// a second statement after it. Returns the id.
    func insertKeyless(kind: String, args: String, options: JobOptions, notify: Bool) async throws -> Int64 {
        let statement = EnqueueStatement(job: NewJob(kind: kind, args: args, options: options), notify: notify)
        guard let id = try await self.rows(of: statement).first else { throw QueueError.contention("the insert returned no row") }
        return id
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
        let timeouts = jobs.map { $0.options.timeoutMilliseconds ?? 0 }
        let query: PostgresQuery = """
            INSERT INTO skipper.jobs (queue, kind, args, priority, run_at, max_attempts, unique_key, meta, timeout_ms)
            SELECT q, k, a::jsonb, p, CASE WHEN r < 0 THEN now() ELSE to_timestamp(r) END, m, nullif(u, ''), e::jsonb, nullif(t, 0)
            FROM unnest(\(queues)::text[], \(kinds)::text[], \(args)::text[], \(priorities)::int2[], \(runAts)::float8[],
                        \(maxAttempts)::int4[], \(keys)::text[], \(metas)::text[], \(timeouts)::int4[]) AS t(q, k, a, p, r, m, u, e, t)
            ON CONFLICT (kind, unique_key, finished_at) WHERE status = 'QUEUED' AND unique_key IS NOT NULL DO NOTHING
            RETURNING id
            """
        var ids: [Int64] = []
        ids.reserveCapacity(jobs.count)
        for row in try await self.run(query, on: connection) { ids.append(try row.decode(Int64.self)) }
        return ids
    }

    /// Sends one wake-up per queue on `skipper_jobs`, outside any insert transaction.
    func notifyInserted(queues: [String]) async throws {
        try await self.client.perform(
            "SELECT pg_notify(\(Channel.jobs), q) FROM unnest(\(queues)::text[]) AS q", logger: self.logger)
    }

    /// Inserts keyless jobs and returns their rows in the order given: the prepared single-row INSERT for one, the
    /// prepared multi-row INSERT for more (the grouped submit of ``SubmitBatcher``).
    func insertReturning(_ jobs: [NewJob]) async throws -> [JobRecord] {
        if jobs.count == 1 {
            guard let record = try await self.rows(of: SubmitStatement(job: jobs[0])).first else {
                throw QueueError.contention("the insert returned no row")
            }
            return [record]
        }
        var records = try await self.rows(of: SubmitManyStatement(jobs))
        guard records.count == jobs.count else {
            throw QueueError.contention("the insert returned \(records.count) rows for \(jobs.count) jobs")
        }
        // Identity values are drawn in the order of the INSERT's SELECT … ORDER BY, so sorted ids follow the jobs.
        records.sort { $0.id < $1.id }
        return records
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

/// One submission: the bare INSERT … RETURNING, prepared once per connection.
struct SubmitStatement: PostgresPreparedStatement {
    static let sql = """
        INSERT INTO skipper.jobs AS j (queue, kind, args, priority, run_at, max_attempts, meta, timeout_ms)
        VALUES ($1, $2, $3::jsonb, $4, coalesce($5, now()), $6, $7::jsonb, $8)
        RETURNING \(JobRecord.insertedColumns)
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .text, .int2, .timestamptz, .int4, .text, .int4]
    typealias Row = JobRecord

    let job: NewJob

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(self.job.options.queue)
        bindings.append(self.job.kind)
        bindings.append(self.job.args)
        bindings.append(self.job.options.priority)
        if let runAt = self.job.options.runAt { bindings.append(runAt) } else { bindings.appendNull() }
        bindings.append(self.job.options.maxAttempts)
        bindings.append(try JobStore.json(self.job.options.meta))
        bindings.append(self.job.options.timeoutMilliseconds)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> JobRecord { try JobRecord(row: row) }
}

/// One keyless job, and the wake-up of its queue when `notify` (the first insert after a quiet moment: sent with the
/// insert, it reaches runners at the commit, a round trip sooner than a NOTIFY of its own); prepared once per
/// connection.
struct EnqueueStatement: PostgresPreparedStatement {
    static let sql = """
        WITH i AS (
          INSERT INTO skipper.jobs (queue, kind, args, priority, run_at, max_attempts, meta, timeout_ms)
          VALUES ($1, $2, $3::jsonb, $4, coalesce($5, now()), $6, $7::jsonb, $8)
          RETURNING id, queue)
        SELECT i.id FROM i LEFT JOIN LATERAL (SELECT pg_notify('\(Channel.jobs)', i.queue) WHERE $9) n ON true
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .text, .int2, .timestamptz, .int4, .text, .int4, .bool]
    typealias Row = Int64

    let job: NewJob
    let notify: Bool

    /// The submit's eight values (the same columns), then whether to notify.
    func makeBindings() throws -> PostgresBindings {
        var bindings = try SubmitStatement(job: self.job).makeBindings()
        bindings.append(self.notify)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}

/// Many submissions in one statement: arrays bound as parameters, unnested in order, prepared once per connection.
struct SubmitManyStatement: PostgresPreparedStatement {
    static let sql = """
        INSERT INTO skipper.jobs AS j (queue, kind, args, priority, run_at, max_attempts, meta, timeout_ms)
        SELECT q, k, a::jsonb, p, CASE WHEN has_r THEN r ELSE now() END, m, e::jsonb, nullif(t, 0)
        FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::bool[], $6::timestamptz[], $7::int4[], $8::text[], $9::int4[])
             WITH ORDINALITY AS t(q, k, a, p, has_r, r, m, e, t, n)
        ORDER BY n
        RETURNING \(JobRecord.insertedColumns)
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .textArray, .textArray, .textArray, .int2Array, .boolArray, .timestamptzArray, .int4Array, .textArray, .int4Array,
    ]
    typealias Row = JobRecord

    let jobs: [NewJob]

    init(_ jobs: [NewJob]) {
        self.jobs = jobs
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 9)
        bindings.append(self.jobs.map(\.options.queue))
        bindings.append(self.jobs.map(\.kind))
        bindings.append(self.jobs.map(\.args))
        bindings.append(self.jobs.map(\.options.priority))
        bindings.append(self.jobs.map { $0.options.runAt != nil })
        // Arrays cannot hold NULL here: a row without run_at carries any date and has_r = false.
        bindings.append(self.jobs.map { $0.options.runAt ?? Date(timeIntervalSince1970: 0) })
        bindings.append(self.jobs.map(\.options.maxAttempts))
        bindings.append(try self.jobs.map { try JobStore.json($0.options.meta) })
        // 0: no timeout of its own (arrays cannot hold NULL here).
        bindings.append(self.jobs.map { $0.options.timeoutMilliseconds ?? 0 })
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> JobRecord { try JobRecord(row: row) }
}
