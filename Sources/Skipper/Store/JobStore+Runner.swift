import Foundation
import Logging
import PostgresNIO

/// A finished attempt, as the completer writes it.
package struct Finished: Sendable {
    package enum Outcome: Sendable {
        /// Ran to the end; `result` is JSON text or nil.
        case completed(result: String?)
        /// Threw: retried after `retryDelay` while attempts remain, unless `permanent`.
        case failed(error: String, retryDelay: Duration, permanent: Bool)
        /// Stopped by a cancel request.
        case cancelled
        /// Stopped by this runner's shutdown: back to QUEUED without spending the attempt.
        case released
    }

    package let id: Int64
    package let attempt: Int32
    package let outcome: Outcome
    /// Last progress numbers, written with the outcome; -1 keeps the column as it is.
    package let processed: Int64
    package let total: Int64

    package init(id: Int64, attempt: Int32, outcome: Outcome, processed: Int64 = -1, total: Int64 = -1) {
        self.id = id
        self.attempt = attempt
        self.outcome = outcome
        self.processed = processed
        self.total = total
    }
}

extension JobStore {
    // MARK: - Claim

    /// Claims up to `limit` QUEUED jobs of `queues` for `runnerID` in one statement.
    package func claim(queues: [String], runnerID: String, limit: Int) async throws -> [ClaimedJob] {
        let rows = try await self.client.query(
            """
            WITH next AS (
              SELECT id FROM skipper.jobs
              WHERE status = 'QUEUED' AND queue = ANY(\(queues)::text[]) AND run_at <= now()
              ORDER BY priority, run_at, id
              LIMIT \(Int64(limit))
              FOR UPDATE SKIP LOCKED)
            UPDATE skipper.jobs j
            SET status = 'RUNNING', attempt = j.attempt + 1, started_at = now(), runner_id = \(runnerID),
                attempted_by = array_append(j.attempted_by, \(runnerID))
            FROM next WHERE j.id = next.id
            RETURNING j.id, j.queue, j.kind, j.args::text, j.attempt, j.max_attempts, j.meta::text, j.meta->>'request_id'
            """,
            logger: self.logger)
        var claimed: [ClaimedJob] = []
        claimed.reserveCapacity(limit)
        for try await (id, queue, kind, args, attempt, maxAttempts, meta, requestID) in rows.decode(
            (Int64, String, String, String, Int32, Int32, String, String?).self)
        {
            claimed.append(ClaimedJob(
                id: id, queue: queue, kind: kind, args: args, attempt: attempt, maxAttempts: maxAttempts, meta: meta,
                requestID: requestID))
        }
        return claimed
    }

    // MARK: - Finish (fenced, batched)

    /// Writes finished attempts, one statement per kind of outcome. Returns the ids whose write took effect;
    /// the others were no longer held by this runner (rescued or cancelled meanwhile) and are left alone.
    package func finish(_ batch: [Finished], runnerID: String) async throws -> Set<Int64> {
        var applied = Set<Int64>()
        var completed: [Finished] = []
        var failed: [Finished] = []
        var cancelled: [Finished] = []
        var released: [Finished] = []
        for item in batch {
            switch item.outcome {
            case .completed: completed.append(item)
            case .failed: failed.append(item)
            case .cancelled: cancelled.append(item)
            case .released: released.append(item)
            }
        }
        if !completed.isEmpty { applied.formUnion(try await self.complete(completed, runnerID: runnerID)) }
        if !failed.isEmpty { applied.formUnion(try await self.requeueing { try await self.fail(failed, runnerID: runnerID, clearKeys: $0) }) }
        if !cancelled.isEmpty { applied.formUnion(try await self.cancelled(cancelled, runnerID: runnerID)) }
        if !released.isEmpty { applied.formUnion(try await self.requeueing { try await self.release(released, runnerID: runnerID, clearKeys: $0) }) }
        return applied
    }

    private func complete(_ items: [Finished], runnerID: String) async throws -> [Int64] {
        let results: [String] = items.map {
            if case .completed(let result) = $0.outcome { return result ?? "null" }
            return "null"
        }
        return try await self.idsNotifying(
            """
            UPDATE skipper.jobs j
            SET status = 'COMPLETED', finished_at = now(), result = nullif(f.result, 'null')::jsonb,
                processed = CASE WHEN f.processed >= 0 THEN f.processed ELSE j.processed END,
                total = CASE WHEN f.total >= 0 THEN f.total ELSE j.total END
            FROM unnest(\(items.map(\.id))::int8[], \(items.map(\.attempt))::int4[], \(results)::text[],
                        \(items.map(\.processed))::int8[], \(items.map(\.total))::int8[])
                 AS f(id, attempt, result, processed, total)
            WHERE j.id = f.id AND j.attempt = f.attempt AND j.status = 'RUNNING' AND j.runner_id = \(runnerID)
            RETURNING j.id, f.processed >= 0 AS watched
            """)
    }

    private func fail(_ items: [Finished], runnerID: String, clearKeys: Bool) async throws -> [Int64] {
        var errors: [String] = []
        var delays: [Int64] = []
        var permanent: [Bool] = []
        for item in items {
            guard case .failed(let error, let delay, let isPermanent) = item.outcome else { continue }
            errors.append(error)
            delays.append(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)
            permanent.append(isPermanent)
        }
        return try await self.idsNotifying(
            """
            UPDATE skipper.jobs j
            SET status = CASE WHEN f.final THEN 'FAILED' ELSE 'QUEUED' END,
                finished_at = CASE WHEN f.final THEN now() END,
                run_at = CASE WHEN f.final THEN j.run_at ELSE now() + f.delay_ms * interval '1 millisecond' END,
                runner_id = CASE WHEN f.final THEN j.runner_id END,
                errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'at', now(), 'error', f.error)),
                unique_key = CASE WHEN f.final OR j.unique_key IS NULL THEN j.unique_key
                                  WHEN \(clearKeys) OR EXISTS (SELECT 1 FROM skipper.jobs o
                                       WHERE o.unique_key = j.unique_key AND o.status = 'QUEUED') THEN NULL
                                  ELSE j.unique_key END,
                processed = CASE WHEN f.processed >= 0 THEN f.processed ELSE j.processed END,
                total = CASE WHEN f.total >= 0 THEN f.total ELSE j.total END
            FROM (SELECT u.*, (u.permanent OR s.attempt >= s.max_attempts) AS final
                  FROM unnest(\(items.map(\.id))::int8[], \(items.map(\.attempt))::int4[], \(errors)::text[],
                              \(delays)::int8[], \(permanent)::bool[], \(items.map(\.processed))::int8[],
                              \(items.map(\.total))::int8[])
                       AS u(id, attempt, error, delay_ms, permanent, processed, total)
                  JOIN skipper.jobs s ON s.id = u.id) AS f
            WHERE j.id = f.id AND j.attempt = f.attempt AND j.status = 'RUNNING' AND j.runner_id = \(runnerID)
            RETURNING j.id, true AS watched
            """)
    }

    private func cancelled(_ items: [Finished], runnerID: String) async throws -> [Int64] {
        try await self.idsNotifying(
            """
            UPDATE skipper.jobs j
            SET status = 'CANCELLED', finished_at = now(),
                processed = CASE WHEN f.processed >= 0 THEN f.processed ELSE j.processed END,
                total = CASE WHEN f.total >= 0 THEN f.total ELSE j.total END
            FROM unnest(\(items.map(\.id))::int8[], \(items.map(\.attempt))::int4[],
                        \(items.map(\.processed))::int8[], \(items.map(\.total))::int8[]) AS f(id, attempt, processed, total)
            WHERE j.id = f.id AND j.attempt = f.attempt AND j.status = 'RUNNING' AND j.runner_id = \(runnerID)
            RETURNING j.id, true AS watched
            """)
    }

    private func release(_ items: [Finished], runnerID: String, clearKeys: Bool) async throws -> [Int64] {
        try await self.idsNotifying(
            """
            UPDATE skipper.jobs j
            SET status = 'QUEUED', attempt = j.attempt - 1, runner_id = NULL, started_at = NULL, run_at = now(),
                unique_key = CASE WHEN j.unique_key IS NULL THEN NULL
                                  WHEN \(clearKeys) OR EXISTS (SELECT 1 FROM skipper.jobs o
                                       WHERE o.unique_key = j.unique_key AND o.status = 'QUEUED') THEN NULL
                                  ELSE j.unique_key END,
                processed = CASE WHEN f.processed >= 0 THEN f.processed ELSE j.processed END,
                total = CASE WHEN f.total >= 0 THEN f.total ELSE j.total END
            FROM unnest(\(items.map(\.id))::int8[], \(items.map(\.attempt))::int4[],
                        \(items.map(\.processed))::int8[], \(items.map(\.total))::int8[]) AS f(id, attempt, processed, total)
            WHERE j.id = f.id AND j.attempt = f.attempt AND j.status = 'RUNNING' AND j.runner_id = \(runnerID)
            RETURNING j.id, true AS watched
            """)
    }

    /// Putting a job back to QUEUED can collide with a newer QUEUED job holding the same unique key (the partial
    /// unique index). The statements drop the key of the job going back when they see such a twin; a twin
    /// inserted at the same instant makes the statement fail, and the retry drops every key in the batch.
    private func requeueing(_ body: (_ clearKeys: Bool) async throws -> [Int64]) async throws -> [Int64] {
        do {
            return try await body(false)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            return try await body(true)
        }
    }

    // MARK: - Progress, cancel sweep

    /// Writes progress of jobs this runner holds, in one statement. Touches no indexed column: a HOT update.
    func writeProgress(_ items: [(id: Int64, attempt: Int32, processed: Int64, total: Int64)], runnerID: String) async throws {
        guard !items.isEmpty else { return }
        // Each write announces the job on `skipper_events` (the API's live progress); the flusher writes at most
        // once per PROGRESS_INTERVAL, so that is at most one notification per job per interval.
        try await self.client.query(
            """
            WITH u AS (
            UPDATE skipper.jobs j
            SET processed = f.processed, total = CASE WHEN f.total >= 0 THEN f.total ELSE j.total END
            FROM unnest(\(items.map(\.id))::int8[], \(items.map(\.attempt))::int4[], \(items.map(\.processed))::int8[],
                        \(items.map(\.total))::int8[]) AS f(id, attempt, processed, total)
            WHERE j.id = f.id AND j.attempt = f.attempt AND j.status = 'RUNNING' AND j.runner_id = \(runnerID)
            RETURNING j.id)
            SELECT pg_notify(\(Channel.events), u.id::text) FROM u
            """,
            logger: self.logger)
    }

    /// A job the database says a runner holds.
    struct HeldJob: Sendable {
        let id: Int64
        let attempt: Int32
        let cancelRequested: Bool
        /// Claimed longer ago than the sweep's `settled` bound: a claim whose answer is still on its way is younger.
        let settled: Bool
    }

    /// The jobs this runner holds in the database, which of them have a cancel request, and which were claimed
    /// more than `settled` ago.
    func heldJobs(runnerID: String, settled: Duration) async throws -> [HeldJob] {
        let seconds = Double(settled.components.seconds) + Double(settled.components.attoseconds) / 1e18
        let rows = try await self.client.query(
            """
            SELECT id, attempt, cancel_requested_at IS NOT NULL, started_at < now() - make_interval(secs => \(seconds))
            FROM skipper.jobs
            WHERE status = 'RUNNING' AND runner_id = \(runnerID)
            """,
            logger: self.logger)
        var held: [HeldJob] = []
        for try await (id, attempt, requested, settled) in rows.decode((Int64, Int32, Bool, Bool).self) {
            held.append(HeldJob(id: id, attempt: attempt, cancelRequested: requested, settled: settled))
        }
        return held
    }

    /// Runs a finishing UPDATE that returns `id, watched`, and notifies `skipper_events` for the watched jobs in the
    /// same statement: jobs that reported progress, failed or were stopped, which someone may follow live. Jobs
    /// that just completed without progress (the bulk of a busy queue) are not announced: NOTIFY serialises the
    /// commits of every notifying transaction, and followers of such jobs still see them at their next poll.
    private func idsNotifying(_ query: PostgresQuery) async throws -> [Int64] {
        try await self.ids(
            PostgresQuery(
                unsafeSQL: """
                    WITH u AS (\(query.sql))
                    SELECT u.id FROM u
                    LEFT JOIN LATERAL (SELECT pg_notify('\(Channel.events)', u.id::text) WHERE u.watched) n ON true
                    """,
                binds: query.binds))
    }

    private func ids(_ query: PostgresQuery) async throws -> [Int64] {
        var ids: [Int64] = []
        for try await id in try await self.client.query(query, logger: self.logger).decode(Int64.self) { ids.append(id) }
        return ids
    }
}
