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
        /// Stopped by this runner (shutdown, lost lease) or never started: back to QUEUED without spending the attempt.
        case released

        /// The code `skipper.finish_status` reads.
        var code: Int16 {
            switch self {
            case .completed: return 0
            case .failed(_, _, let permanent): return permanent ? 2 : 1
            case .cancelled: return 3
            case .released: return 4
            }
        }
    }

    package let claim: Claim
    package let outcome: Outcome
    /// Last progress numbers, written with the outcome; -1 keeps the column as it is.
    package let processed: Int64
    package let total: Int64

    package init(claim: Claim, outcome: Outcome, processed: Int64 = -1, total: Int64 = -1) {
        self.claim = claim
        self.outcome = outcome
        self.processed = processed
        self.total = total
    }

    /// The same claim, failed permanently with `error` instead (when PostgreSQL refuses to store the real outcome).
    package func failedInstead(_ error: String) -> Finished {
        Finished(claim: self.claim, outcome: .failed(error: error, retryDelay: .zero, permanent: true))
    }
}

extension JobStore {
    /// The longest error message kept in `errors`; longer ones are cut, so one huge message cannot grow the row.
    static let maxErrorLength = 8192
    /// The most entries `errors` keeps (the oldest go first).
    static let maxErrors = 20

    // MARK: - Claim

    /// Claims up to `limit` QUEUED jobs of `queues` and `kinds` for `runnerID` in one statement, under one new lease
    /// token. The plan walks each queue's claim index in `priority, run_at, id` order and stops at `limit` (no sort of
    /// the backlog, whatever its depth); with several queues, the walks are merged, so the cost grows with the number
    /// of queues, not with the jobs waiting. Claims nothing while the runner's own lease has run out by the server's
    /// clock (its row is gone or stale), the condition under which the leader rescues its jobs.
    package func claim(queues: [String], kinds: [String], runnerID: String, limit: Int) async throws -> [ClaimedJob] {
        precondition(!queues.isEmpty, "a runner serves at least one queue")
        var binds = PostgresBindings(capacity: 3 + queues.count)
        binds.append(kinds)
        binds.append(Int64(limit))
        binds.append(runnerID)
        for queue in queues { binds.append(queue) }
        let query = PostgresQuery(unsafeSQL: Self.claimSQL(queues: queues.count), binds: binds)
        return try await self.retryingMovedRows {
            var claimed: [ClaimedJob] = []
            claimed.reserveCapacity(limit)
            let rows = try await self.client.query(query, logger: self.logger)
            for try await (id, lease, queue, kind, args, attempt, maxAttempts, meta, requestID) in rows.decode(
                (Int64, Int64, String, String, String, Int32, Int32, String, String?).self)
            {
                claimed.append(ClaimedJob(
                    id: id, lease: lease, queue: queue, kind: kind, args: args, attempt: attempt, maxAttempts: maxAttempts,
                    meta: meta, requestID: requestID))
            }
            return claimed
        }
    }

    /// The claim statement for `queues` queues: `$1` kinds, `$2` limit, `$3` runner id, `$4…` the queues. Each
    /// queue's branch is an ordered walk of the claim index that locks (SKIP LOCKED) at most `limit` rows and stops;
    /// with one queue that is the whole plan, with several the branches' rows (at most `queues × limit`) are merged
    /// by a top-N sort, whatever the depth of the backlog.
    static func claimSQL(queues: Int) -> String {
        let branches = (0..<queues).map { index in
            """
            SELECT id, priority, run_at FROM skipper.jobs
            WHERE status = 'QUEUED' AND finished_at IS NULL AND queue = $\(4 + index) AND run_at <= now()
              AND kind = ANY($1::text[])
            ORDER BY priority, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
            """
        }
        // Several queues: each branch a subquery (FOR UPDATE is not allowed in a UNION's own branches), merged by a
        // top-N sort of at most `queues × limit` rows.
        let next = queues == 1
            ? branches[0]
            : "SELECT id FROM (" + branches.enumerated().map { "SELECT * FROM (\($1)) b\($0)" }.joined(separator: "\nUNION ALL\n")
                + ") c ORDER BY priority, run_at, id LIMIT $2"
        return """
            WITH me AS (
              SELECT nextval('skipper.job_leases') AS lease FROM skipper.runners r
              WHERE r.id = $3 AND r.heartbeat_at > now() - r.lease_ms * interval '1 millisecond'),
            next AS (\(next))
            UPDATE skipper.jobs j
            SET status = 'RUNNING', attempt = j.attempt + 1, started_at = now(), runner_id = $3, lease = me.lease
            FROM next, me
            WHERE j.id = next.id AND j.status = 'QUEUED' AND j.finished_at IS NULL
            RETURNING j.id, j.lease, j.queue, j.kind, j.args::text, j.attempt, j.max_attempts, j.meta::text,
                      j.meta->>'request_id'
            """
    }

    // MARK: - Finish (fenced, batched)

    /// Writes finished attempts in one statement, each fenced on its claim (job id and lease token, still RUNNING).
    /// Returns the claims whose write took effect; the others were no longer held (rescued, or already written).
    ///
    /// `skipper.finish_status` decides each job's next status from the outcome and the row as it is when the write
    /// lands: a job with a cancel request never goes back to QUEUED (failed or released, it ends CANCELLED), and a
    /// failure with no attempt left ends FAILED. Errors are cut to 8 KiB and `errors` keeps the last 20 entries.
    package func finish(_ batch: [Finished], runnerID: String) async throws -> Set<Claim> {
        guard !batch.isEmpty else { return [] }
        do {
            return try await self.finish(batch, runnerID: runnerID, clearKeys: false)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            // A job going back to QUEUED collided with a QUEUED twin of its unique key inserted at the same instant
            // (the statement drops the key when it sees a twin, but cannot see one not yet committed).
            return try await self.finish(batch, runnerID: runnerID, clearKeys: true)
        }
    }

    private func finish(_ batch: [Finished], runnerID: String, clearKeys: Bool) async throws -> Set<Claim> {
        var results: [String] = []
        var errors: [String] = []
        var delays: [Int64] = []
        results.reserveCapacity(batch.count)
        errors.reserveCapacity(batch.count)
        delays.reserveCapacity(batch.count)
        for item in batch {
            switch item.outcome {
            case .completed(let result):
                results.append(result ?? "null")
                errors.append("")
                delays.append(0)
            case .failed(let error, let delay, _):
                results.append("null")
                errors.append(error.count > Self.maxErrorLength ? String(error.prefix(Self.maxErrorLength)) + "… (cut)" : error)
                delays.append(min(max(delay.milliseconds, 0), JobError.maxRetryDelayMilliseconds))
            case .cancelled, .released:
                results.append("null")
                errors.append("")
                delays.append(0)
            }
        }
        let query: PostgresQuery = """
            WITH f AS (
              SELECT * FROM unnest(\(batch.map(\.claim.jobID))::int8[], \(batch.map(\.claim.lease))::int8[],
                                   \(batch.map(\.outcome.code))::int2[], \(results)::text[], \(errors)::text[],
                                   \(delays)::int8[], \(batch.map(\.processed))::int8[], \(batch.map(\.total))::int8[])
                AS f(id, lease, outcome, result, error, delay_ms, processed, total)),
            u AS (
              UPDATE skipper.jobs j
              SET status = skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at),
                  finished_at = CASE WHEN skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) = 'QUEUED'
                                     THEN NULL ELSE now() END,
                  run_at = CASE WHEN skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) <> 'QUEUED' THEN j.run_at
                                WHEN f.outcome = 1 THEN now() + f.delay_ms * interval '1 millisecond'
                                ELSE now() END,
                  attempt = CASE WHEN f.outcome = 4 THEN j.attempt - 1 ELSE j.attempt END,
                  runner_id = CASE WHEN skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) = 'QUEUED'
                                   THEN NULL ELSE j.runner_id END,
                  started_at = CASE WHEN f.outcome = 4 THEN NULL ELSE j.started_at END,
                  result = CASE WHEN f.outcome = 0 THEN nullif(f.result, 'null')::jsonb ELSE j.result END,
                  errors = CASE WHEN f.outcome IN (1, 2)
                                THEN (CASE WHEN jsonb_array_length(j.errors) >= \(Int32(Self.maxErrors)) THEN j.errors - 0 ELSE j.errors END)
                                     || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'at', now(), 'error', f.error, 'runner', j.runner_id))
                                ELSE j.errors END,
                  unique_key = CASE WHEN j.unique_key IS NULL
                                      OR skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) <> 'QUEUED'
                                    THEN j.unique_key
                                    WHEN \(clearKeys) OR EXISTS (SELECT 1 FROM skipper.jobs o
                                         WHERE o.status = 'QUEUED' AND o.finished_at IS NULL AND o.kind = j.kind
                                           AND o.unique_key = j.unique_key)
                                    THEN NULL
                                    ELSE j.unique_key END,
                  processed = CASE WHEN f.processed >= 0 THEN f.processed ELSE j.processed END,
                  total = CASE WHEN f.total >= 0 THEN f.total ELSE j.total END
              FROM f
              WHERE j.id = f.id AND j.lease = f.lease AND j.status = 'RUNNING' AND j.finished_at IS NULL AND j.runner_id = \(runnerID)
              RETURNING j.id, j.lease, f.processed >= 0 OR f.outcome <> 0 AS watched)
            SELECT u.id, u.lease FROM u
            LEFT JOIN LATERAL (SELECT pg_notify(\(Channel.events), u.id::text) WHERE u.watched) n ON true
            """
        // Jobs that reported progress, failed or were stopped are announced on skipper_events (someone may follow
        // them live); jobs that just completed without progress, the bulk of a busy queue, are not: NOTIFY
        // serialises the commits of every notifying transaction, and followers still see them at their next poll.
        return try await self.retryingMovedRows {
            var applied = Set<Claim>()
            for try await (id, lease) in try await self.client.query(query, logger: self.logger).decode((Int64, Int64).self) {
                applied.insert(Claim(jobID: id, lease: lease))
            }
            return applied
        }
    }

    // MARK: - Progress, cancel sweep

    /// Writes progress of jobs this runner holds, in one statement. Touches no indexed column: a HOT update.
    func writeProgress(_ items: [(claim: Claim, processed: Int64, total: Int64)], runnerID: String) async throws {
        guard !items.isEmpty else { return }
        // Each write announces the job on `skipper_events` (the API's live progress); the flusher writes at most
        // once per PROGRESS_INTERVAL, so that is at most one notification per job per interval.
        let query: PostgresQuery = """
            WITH u AS (
              UPDATE skipper.jobs j
              SET processed = f.processed, total = CASE WHEN f.total >= 0 THEN f.total ELSE j.total END
              FROM unnest(\(items.map(\.claim.jobID))::int8[], \(items.map(\.claim.lease))::int8[],
                          \(items.map(\.processed))::int8[], \(items.map(\.total))::int8[]) AS f(id, lease, processed, total)
              WHERE j.id = f.id AND j.lease = f.lease AND j.status = 'RUNNING' AND j.finished_at IS NULL AND j.runner_id = \(runnerID)
              RETURNING j.id)
            SELECT pg_notify(\(Channel.events), u.id::text) FROM u
            """
        try await self.retryingMovedRows { _ = try await self.client.query(query, logger: self.logger) }
    }

    /// A job the database says a runner holds.
    struct HeldJob: Sendable {
        let claim: Claim
        let cancelRequested: Bool
        /// Claimed longer ago than the sweep's `settled` bound: a claim whose answer is still on its way is younger.
        let settled: Bool
    }

    /// The jobs this runner holds in the database, which of them have a cancel request, and which were claimed
    /// more than `settled` ago.
    func heldJobs(runnerID: String, settled: Duration) async throws -> [HeldJob] {
        let rows = try await self.client.query(
            """
            SELECT id, lease, cancel_requested_at IS NOT NULL,
                   started_at < now() - \(settled.milliseconds) * interval '1 millisecond'
            FROM skipper.jobs
            WHERE status = 'RUNNING' AND finished_at IS NULL AND runner_id = \(runnerID)
            """,
            logger: self.logger)
        var held: [HeldJob] = []
        for try await (id, lease, requested, settled) in rows.decode((Int64, Int64, Bool, Bool).self) {
            held.append(HeldJob(claim: Claim(jobID: id, lease: lease), cancelRequested: requested, settled: settled))
        }
        return held
    }

    /// Runs `body` again when a row it meant to update or lock was moved to another partition of `skipper.jobs` by
    /// a concurrent transaction (a job finishing while it is cancelled, say): PostgreSQL then reports a
    /// serialization failure (40001) instead of following the row, and a new snapshot sees where it went.
    func retryingMovedRows<T>(_ body: () async throws -> T) async throws -> T {
        var tries = 0
        while true {
            do {
                return try await body()
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "40001" && tries < 10 {
                tries += 1
            }
        }
    }
}
