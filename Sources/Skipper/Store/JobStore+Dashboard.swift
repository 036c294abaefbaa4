import Foundation
import Logging
import PostgresNIO

/// What an operation on every job a filter selects did (``JobStore/cancel(_:limit:after:)``,
/// ``JobStore/retry(_:limit:after:)``): the jobs it changed, and where the next call goes on.
public struct BulkOutcome: Sendable, Equatable {
    /// The jobs changed (cancelled, or given a cancel request; queued again), newest first.
    public var changed: [Int64] = []
    /// Pass as `after` to go on: the oldest job this call looked at. Nil when it looked at the last one.
    public var next: Int64?
}

/// Reads the dashboard needs beyond the job resource: runners, the per-minute roll-up, and operations on every job a
/// filter selects.
extension JobStore {
    // MARK: - Runners

    /// Every registered runner, as the API's JSON: host, pid, queues, kinds, workers, its RUNNING jobs, heartbeat age,
    /// lease, and `stale` once its heartbeat is older than half its lease (at the whole lease its jobs are rescued).
    public func runners() async throws -> [String] {
        let rows = try await self.client.query(
            """
            SELECT row_to_json(x)::text FROM (
              SELECT r.id AS runner_id, r.host, r.pid, r.queues, r.kinds, r.concurrency AS workers,
                     (SELECT count(*) FROM skipper.jobs_active j
                      WHERE j.status = 'RUNNING' AND j.finished_at IS NULL AND j.runner_id = r.id) AS running,
                     \(unescaped: Self.apiTime("r.started_at")) AS started_at, \(unescaped: Self.apiTime("r.heartbeat_at")) AS heartbeat_at,
                     round(extract(epoch FROM clock_timestamp() - r.heartbeat_at)::numeric, 3)::float8 AS heartbeat_age_seconds,
                     r.lease_ms / 1000.0::float8 AS lease_seconds,
                     r.heartbeat_at < clock_timestamp() - r.lease_ms * interval '0.5 millisecond' AS stale
              FROM skipper.runners r) x
            ORDER BY x.host, x.pid, x.runner_id
            """,
            logger: self.logger)
        return try await Self.texts(rows)
    }

    // MARK: - Per-minute statistics

    /// The rolled-up minutes of the last `window`, oldest first, for one queue or (nil) all together: jobs completed,
    /// failed and cancelled, and the p50 and p99 wait from due to start, as JSON objects. Minutes without finished
    /// jobs have no row.
    public func stats(window: Duration, queue: String?) async throws -> [String] {
        let rows = try await self.client.query(
            """
            SELECT row_to_json(x)::text FROM (
              SELECT \(unescaped: Self.apiTime("s.minute")) AS minute, s.completed, s.failed, s.cancelled,
                     round(s.latency_p50_ms::numeric, 3)::float8 AS latency_p50_ms,
                     round(s.latency_p99_ms::numeric, 3)::float8 AS latency_p99_ms
              FROM skipper.stats_minutely s
              WHERE s.queue = coalesce(\(queue)::text, '')
                AND s.minute >= date_trunc('minute', now()) - \(Int64(window.components.seconds)) * interval '1 second'
              ORDER BY s.minute) x
            """,
            logger: self.logger)
        return try await Self.texts(rows)
    }

    /// Rolls up the minutes of finished jobs not yet in `skipper.stats_minutely` (at most `maxMinutes`), on one
    /// runner at a time. Returns the minutes rolled up, nil when another runner is doing it.
    func rollUpStats(maxMinutes: Int32 = 10) async throws -> Int? {
        try await self.asLeader(.stats) { connection in
            let rows = try await connection.query("SELECT skipper.roll_up_stats(\(maxMinutes))", logger: self.logger)
            for try await minutes in rows.decode(Int32.self) { return Int(minutes) }
            return 0
        }
    }

    // MARK: - Operations on what a filter selects

    /// Cancels up to `limit` of the QUEUED and RUNNING jobs `filter` selects, newest first, older than `after`: each
    /// as ``cancel(id:)`` does it (a QUEUED job at once, a RUNNING one by a request to its runner). Jobs already asked
    /// to cancel are left out.
    public func cancel(_ filter: JobFilter, limit: Int, after: Int64?, within budget: Duration? = nil) async throws -> BulkOutcome {
        try await self.eachSelected(
            filter, among: [.queued, .running], extra: "j.cancel_requested_at IS NULL", limit: limit, after: after, within: budget
        ) { id in
            switch try await self.cancel(id: id) {
            case .cancelled, .requested: true
            case .alreadyFinished, .notFound: false
            }
        }
    }

    /// Queues again up to `limit` of the FAILED and CANCELLED jobs `filter` selects, newest first, older than
    /// `after`, each as ``retry(id:)`` does it; a job whose unique key another QUEUED job holds stays as it is.
    public func retry(_ filter: JobFilter, limit: Int, after: Int64?, within budget: Duration? = nil) async throws -> BulkOutcome {
        try await self.eachSelected(filter, among: [.failed, .cancelled], extra: nil, limit: limit, after: after, within: budget) { id in
            if case .queued = try await self.retry(id: id) { return true }
            return false
        }
    }

    /// Runs `change` on each job `filter` selects among `statuses` (up to `limit`, newest first, older than `after`).
    /// With a `budget`, stops at the first job past it (each job is its own short transaction): the page is then
    /// shorter, and `next` goes on after the last job looked at, so a caller bounded in time (the API, by
    /// `DB_TIMEOUT`) never reports a failure for a page it half changed.
    private func eachSelected(
        _ filter: JobFilter, among statuses: [JobStatus], extra: String?, limit: Int, after: Int64?, within budget: Duration?,
        _ change: (Int64) async throws -> Bool
    ) async throws -> BulkOutcome {
        let deadline = budget.map { ContinuousClock.now + $0 }
        var outcome = BulkOutcome()
        // A filter on another status selects nothing here.
        if let status = filter.status, !statuses.contains(status) { return outcome }
        var binds = PostgresBindings()
        var conditions = try filter.conditions(&binds, after: after)
        if filter.status == nil {
            try binds.append(statuses.map(\.rawValue))
            conditions.append("j.status = ANY ($\(binds.count)::text[])")
        }
        if let extra { conditions.append(extra) }
        try binds.append(Int64(limit + 1))
        // Only fixed fragments are concatenated; every value is a bind.
        let query = PostgresQuery(
            unsafeSQL: "SELECT j.id FROM skipper.jobs j WHERE \(conditions.joined(separator: " AND ")) ORDER BY j.id DESC LIMIT $\(binds.count)",
            binds: binds)
        var ids: [Int64] = []
        for try await id in try await self.client.query(query, logger: self.logger).decode(Int64.self) { ids.append(id) }
        for (index, id) in ids.prefix(limit).enumerated() {
            if let deadline, index > 0, ContinuousClock.now >= deadline {
                outcome.next = ids[index - 1]
                return outcome
            }
            if try await change(id) { outcome.changed.append(id) }
        }
        outcome.next = ids.count > limit ? ids[limit - 1] : nil
        return outcome
    }
}
