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
        /// The handler asked to run again after the delay: back to QUEUED without spending the attempt.
        case snoozed(Duration)

        /// The code `skipper.finish_status` reads.
        var code: Int16 {
            switch self {
            case .completed: return 0
            case .failed(_, _, let permanent): return permanent ? 2 : 1
            case .cancelled: return 3
            case .released: return 4
            case .snoozed: return 5
            }
        }
    }

    package let claim: Claim
    package let outcome: Outcome
    /// Last progress numbers, written with the outcome; -1 keeps the column as it is.
    package let processed: Int64
    package let total: Int64

    /// The job asked for its finish to be announced (typed enqueue: someone may await its result).
    package let announce: Bool

    /// The job's queue when a limit governs its claims: once this finish is written, runners of the queue are woken,
    /// as a slot may have opened.
    package var limitedQueue: String?

    package init(
        claim: Claim, outcome: Outcome, processed: Int64 = -1, total: Int64 = -1, announce: Bool = false, limitedQueue: String? = nil
    ) {
        self.limitedQueue = limitedQueue
        self.claim = claim
        self.outcome = outcome
        self.processed = processed
        self.total = total
        self.announce = announce
    }

    /// Completed with no result and no progress to write: the bulk of a busy queue.
    var isPlainCompletion: Bool {
        guard case .completed(nil) = self.outcome else { return false }
        return self.processed < 0 && self.total < 0 && !self.announce
    }

    /// The same claim, failed permanently with `error` instead (when PostgreSQL refuses to store the real outcome).
    package func failedInstead(_ error: String) -> Finished {
        Finished(
            claim: self.claim, outcome: .failed(error: error, retryDelay: .zero, permanent: true), announce: self.announce,
            limitedQueue: self.limitedQueue)
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
    /// of queues, not with the jobs waiting. Each queue's walk starts after `after[queue]` (default: the head), so a
    /// runner that resumes where its last claim stopped does not step over the dead index entries of the jobs it
    /// claimed before. Claims nothing while the runner's own lease has run out by the server's clock (its row is gone
    /// or stale), the condition under which the leader rescues its jobs.
    package func claim(
        queues: [String], kinds: [String], runnerID: String, limit: Int, after: [String: ClaimPosition] = [:]
    ) async throws -> [ClaimedJob] {
        precondition(!queues.isEmpty, "a runner serves at least one queue")
        return try await self.retryingMovedRows {
            var claimed: [ClaimedJob] = []
            claimed.reserveCapacity(limit)
            if self.prepared, queues.count == 1 {
                let statement = ClaimStatement(kinds: kinds, limit: Int64(limit), runnerID: runnerID, queue: queues[0], after: after[queues[0]] ?? .start)
                for try await job in try await self.client.execute(statement, logger: self.logger) { claimed.append(job) }
            } else {
                // Bound only here: the prepared single-queue statement (the common case) binds its own.
                var binds = PostgresBindings(capacity: 3 + 4 * queues.count)
                binds.append(kinds)
                binds.append(Int64(limit))
                binds.append(runnerID)
                for queue in queues {
                    let position = after[queue] ?? .start
                    binds.append(queue)
                    binds.append(position.priority)
                    binds.append(RawTimestamp(microseconds: position.runAtMicroseconds))
                    binds.append(position.id)
                }
                let query = PostgresQuery(unsafeSQL: Self.claimSQL(queues: queues.count), binds: binds)
                for row in try await self.committedRows(query) { claimed.append(try ClaimedJob(row: row)) }
            }
            // Rows come back in the primary key's order; the runner starts them in the queue's.
            claimed.sort { $0.position < $1.position }
            return claimed
        }
    }

    /// Claims up to `limit` jobs of one queue that is paused or limited, or whose runner serves a limited kind, through
    /// `skipper.claim_limited`: claims of the queue take turns on an advisory lock and admit only what every limit of
    /// the queue and of the kinds allows, so no limit is exceeded whatever the number of runners. Walks at most
    /// `candidates` waiting jobs from the head of the queue.
    ///
    /// With `sharesFirst` (a queue limited as a whole, no limited kind among `kinds`), it first claims from the
    /// runner's shares of the queue's limits in one statement (``ShareClaimStatement``), without calling the function;
    /// only when a share cannot hold the claim does it call `skipper.claim_limited`, which counts. Either way the
    /// database decides what may be claimed: the flag only saves a statement that would find no share.
    ///
    /// A claim from the runner's shares of the queue's limits that finds a share dealt again under it is undone by
    /// the database (SQLSTATE SKL01) and made again here, a few times at most: the next one reads the share as dealt.
    package func claimLimited(
        queue: String, kinds: [String], runnerID: String, limit: Int, candidates: Int = 1000, after: ClaimPosition = .start,
        sharesFirst: Bool = true
    ) async throws -> [ClaimedJob] {
        if sharesFirst, limit > 0 {
            let statement = ShareClaimStatement(
                claim: ClaimStatement(kinds: kinds, limit: Int64(limit), runnerID: runnerID, queue: queue, after: after))
            let rows = try await self.retryingMovedRows { try await self.rows(of: statement) }
            // No row saying "take the turn": the shares held the claim (jobs or none waiting).
            if !rows.contains(where: { $0 == nil }) {
                return rows.compactMap { $0 }.sorted { $0.position < $1.position }
            }
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await self.claimLimitedOnce(
                    queue: queue, kinds: kinds, runnerID: runnerID, limit: limit, candidates: candidates, after: after)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "SKL01" && attempt < 5 {
                continue
            }
        }
    }

    private func claimLimitedOnce(
        queue: String, kinds: [String], runnerID: String, limit: Int, candidates: Int, after: ClaimPosition
    ) async throws -> [ClaimedJob] {
        try await self.retryingMovedRows {
            var claimed: [ClaimedJob] = []
            let rows = try await self.committedRows(
                """
                SELECT id, lease, queue, kind, args, attempt, max_attempts, meta, request_id, priority, run_at, timeout_ms
                FROM skipper.claim_limited(\(queue), \(kinds)::text[], \(Int32(clamping: limit)), \(runnerID), \(Int32(clamping: candidates)),
                                           \(after.priority), \(RawTimestamp(microseconds: after.runAtMicroseconds)), \(after.id))
                """)
            for row in rows { claimed.append(try ClaimedJob(row: row)) }
            claimed.sort { $0.position < $1.position }
            return claimed
        }
    }

    /// What a runner needs to know of the controls on its queues and kinds: which queues are paused, which are
    /// limited, and whether any of its kinds is.
    package func controls(queues: [String], kinds: [String]) async throws -> QueueControls {
        let rows = try await self.client.query(
            """
            SELECT q.name, q.paused, q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL, q.partition_by IS NOT NULL
            FROM skipper.queues q WHERE q.name = ANY(\(queues)::text[])
            UNION ALL
            SELECT k.kind, NULL, true, false FROM skipper.kinds k
            WHERE k.kind = ANY(\(kinds)::text[]) AND (k.concurrency IS NOT NULL OR k.rate_limit IS NOT NULL)
            """,
            logger: self.logger)
        var controls = QueueControls()
        for try await (name, paused, limited, partitioned) in rows.decode((String, Bool?, Bool, Bool).self) {
            guard let paused else {
                controls.limitedKinds.insert(name)
                continue
            }
            if paused { controls.paused.insert(name) }
            if limited { controls.limited.insert(name) }
            if limited, partitioned { controls.partitioned.insert(name) }
        }
        return controls
    }

    /// The claim statement for `queues` queues: `$1` kinds, `$2` limit, `$3` runner id, then per queue its name and the
    /// position to start after (priority, run_at, id). Each queue's branch is an ordered walk of the claim index from
    /// that position, which locks (SKIP LOCKED) at most `limit` rows and stops; with one queue that is the whole plan,
    /// with several the branches' rows (at most `queues × limit`) are merged by a top-N sort, whatever the depth of
    /// the backlog.
    ///
    /// It reads and updates `skipper.jobs_active` itself, the partition every unfinished job lives in (a claim never
    /// finishes a job, so no row moves): through the partitioned table PostgreSQL spends as long again planning it
    /// (the claim's plan depends on its limit, so it is planned on every call). The claimed ids are an array, probed in
    /// the primary key, not a join the planner has to cost; the lease token is one `nextval` for the whole claim.
    static func claimSQL(queues: Int) -> String {
        if queues == 1, let sql = Self.singleQueueClaim { return sql }
        return Self.makeClaimSQL(queues: queues)
    }

    private static let singleQueueClaim: String? = makeClaimSQL(queues: 1)

    private static func makeClaimSQL(queues: Int) -> String {
        let branches = (0..<queues).map { index in
            let q = 4 + 4 * index
            return """
                SELECT id, priority, run_at FROM skipper.jobs_active
                WHERE status = 'QUEUED' AND finished_at IS NULL AND queue = $\(q) AND run_at <= now()
                  AND EXISTS (SELECT FROM skipper.runners r
                              WHERE r.id = $3 AND r.heartbeat_at > now() - r.lease_ms * interval '1 millisecond')
                  AND NOT (SELECT skipper.controlled($\(q), $1::text[]))
                  AND (priority, run_at, id) > ($\(q + 1)::int2, $\(q + 2)::timestamptz, $\(q + 3)::int8)
                  AND kind = ANY($1::text[])
                ORDER BY priority, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
                """
        }
        // Several queues: each branch a subquery (FOR UPDATE is not allowed in a UNION's own branches), merged by a
        // top-N sort of at most `queues × limit` rows.
        let next = queues == 1
            ? branches[0].replacingOccurrences(of: "SELECT id, priority, run_at FROM", with: "SELECT id FROM")
            : "SELECT id FROM (" + branches.enumerated().map { "SELECT * FROM (\($1)) b\($0)" }.joined(separator: "\nUNION ALL\n")
                + ") c ORDER BY priority, run_at, id LIMIT $2"
        return """
            UPDATE skipper.jobs_active j
            SET status = 'RUNNING', attempt = least(j.attempt, 2147483646) + 1, started_at = now(), runner_id = $3,
                lease = (SELECT nextval('skipper.job_leases'))
            WHERE j.id = ANY(ARRAY(\(next))) AND j.status || '' = 'QUEUED' AND j.finished_at IS NULL
            RETURNING j.id, j.lease, j.queue, j.kind, j.args::text, j.attempt, j.max_attempts, j.meta::text,
                      j.meta->>'request_id', j.priority, j.run_at, j.timeout_ms
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
        // Most batches of a busy queue are plain completions (no result, no progress): they take a narrower
        // statement, two arrays instead of eight and none of the per-row decisions.
        if !clearKeys, batch.allSatisfy(\.isPlainCompletion) {
            return try await self.appliedClaims(CompleteStatement(ids: batch.map(\.claim.jobID), leases: batch.map(\.claim.lease)))
        }
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
            case .snoozed(let delay):
                results.append("null")
                errors.append("")
                delays.append(min(max(delay.milliseconds, 0), JobError.maxRetryDelayMilliseconds))
            }
        }
        let statement = FinishStatement(
            ids: batch.map(\.claim.jobID), leases: batch.map(\.claim.lease), outcomes: batch.map(\.outcome.code),
            results: results, errors: errors, delays: delays, processed: batch.map(\.processed), totals: batch.map(\.total),
            clearKeys: clearKeys)
        // Jobs that reported progress, failed or were stopped, and jobs enqueued with the typed API (someone may await
        // their result), are announced on skipper_events; jobs that just completed without progress, the bulk of a
        // busy queue, are not: NOTIFY serialises the commits of every notifying transaction, and followers still see
        // them at their next poll.
        return try await self.appliedClaims(statement)
    }

    /// Runs a fenced finish statement; the claims whose write took effect.
    private func appliedClaims<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws -> Set<Claim>
    where Statement.Row == Claim {
        try await self.retryingMovedRows {
            Set(try await self.rows(of: statement))
        }
    }

    // MARK: - Progress, cancel sweep

    /// Writes progress of jobs this runner holds, in one statement. Touches no indexed column: a HOT update.
    func writeProgress(_ items: [(claim: Claim, processed: Int64, total: Int64)], runnerID: String) async throws {
        guard !items.isEmpty else { return }
        // Each write announces the job on `skipper_events` (the API's live progress); the flusher writes at most
        // once per PROGRESS_INTERVAL, so that is at most one notification per job per interval.
        // Rows someone else holds locked are skipped (SKIP LOCKED), not waited for: a job whose row a handler's
        // fenced transaction holds (its publish stuck behind a lock) made the whole batch wait with every other
        // job's row locked, and an API cancel of any of those waited too. A skipped number is written at the next
        // report or with the job's end.
        let query: PostgresQuery = """
            WITH f AS (
              SELECT * FROM unnest(\(items.map(\.claim.jobID))::int8[], \(items.map(\.claim.lease))::int8[],
                                   \(items.map(\.processed))::int8[], \(items.map(\.total))::int8[]) AS f(id, lease, processed, total)),
            free AS (
              SELECT j.id FROM skipper.jobs j JOIN f ON j.id = f.id AND j.lease = f.lease
              WHERE j.status || '' = 'RUNNING' AND j.finished_at IS NULL
              FOR UPDATE OF j SKIP LOCKED),
            u AS (
              UPDATE skipper.jobs j
              SET processed = f.processed, total = CASE WHEN f.total >= 0 THEN f.total ELSE j.total END
              FROM f JOIN free USING (id)
              WHERE j.id = f.id AND j.lease = f.lease AND j.status || '' = 'RUNNING' AND j.finished_at IS NULL
              RETURNING j.id)
            SELECT pg_notify(\(Channel.events), u.id::text) FROM u
            """
        try await self.retryingMovedRows { try await self.client.perform(query, logger: self.logger) }
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

extension JobStore {
    /// A CTE (`counted`) adding the jobs `source` just finished (its rows' `queue`, `status`, `finished_at`; rows not
    /// finished have no `finished_at`) to `skipper.job_counts`, or taking them off with `sign` -1. Jobs that finished
    /// before the cutover are counted where they are (`skipper.queue_stats`), not here.
    static func countFinished(from source: String, sign: Int = 1) -> String {
        """
        counted AS (
          INSERT INTO skipper.job_counts AS c (queue, status, day, shard, jobs)
          SELECT queue, status, (finished_at AT TIME ZONE 'UTC')::date, pg_backend_pid() % 16, \(sign) * count(*)
          FROM \(source) WHERE finished_at >= (SELECT cutover FROM skipper.partitioning)
          GROUP BY 1, 2, 3
          ON CONFLICT (queue, status, day, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs)
        """
    }
}

extension ClaimedJob {
    /// A row of the claim statement.
    init(row: PostgresRow) throws {
        let cells = row.makeRandomAccess()
        let id = try cells[0].decode(Int64.self)
        self.init(
            id: id, lease: try cells[1].decode(Int64.self), queue: try cells[2].decode(String.self),
            kind: try cells[3].decode(String.self), args: try cells[4].decode(String.self), attempt: try cells[5].decode(Int32.self),
            maxAttempts: try cells[6].decode(Int32.self), meta: try cells[7].decode(String.self),
            requestID: try cells[8].decode(String?.self),
            position: ClaimPosition(priority: try cells[9].decode(Int16.self), runAtMicroseconds: try cells[10].decode(RawTimestamp.self).microseconds, id: id),
            timeout: try cells[11].decode(Int32?.self).map { .milliseconds($0) })
    }
}

/// The claim of a runner serving one queue (the usual case), prepared once per connection: parsed and planned once.
struct ClaimStatement: PostgresPreparedStatement {
    static let sql = JobStore.claimSQL(queues: 1)
    static let bindingDataTypes: [PostgresDataType] = [.textArray, .int8, .text, .text, .int2, .timestamptz, .int8]
    typealias Row = ClaimedJob

    let kinds: [String]
    let limit: Int64
    let runnerID: String
    let queue: String
    let after: ClaimPosition

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(self.kinds)
        bindings.append(self.limit)
        bindings.append(self.runnerID)
        bindings.append(self.queue)
        bindings.append(self.after.priority)
        bindings.append(RawTimestamp(microseconds: self.after.runAtMicroseconds))
        bindings.append(self.after.id)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> ClaimedJob { try ClaimedJob(row: row) }
}

/// The claim of a queue limited as a whole from this runner's shares of its limits (`skipper.limit_shards`, dealt by
/// `skipper.claim_limited` when it counts), as one statement without a function call: the fast path of
/// `skipper.claim_limited` (migration 12), which cost a limited claim about 0.65 ms of plpgsql per call.
///
/// It locks the runner's own shares first (the concurrency share, then the rate share: the order of every claim),
/// each still dealt under the limits this statement read and with room for the whole claim, and claims only if it
/// holds every share the queue's limits need; then it lowers each share by what it took and records the starts for
/// a rate limit, in the same statement. A claim that counts locks every share of the queue before counting, so a
/// share claim either committed before the count (and is counted) or waits for it and then finds its share as
/// dealt after it. Holding its shares before it takes a job, it never needs undoing. (Its check that no kind it
/// claims is limited reads the same snapshot as its walk, so unlike the function it need not check each job again.)
/// When a share is missing, too small, dealt under other limits, or the queue is paused, partitioned or unlimited, or
/// the runner serves a limited kind, it claims nothing and answers one row with `turn` true: the caller then takes
/// the queue's turn.
struct ShareClaimStatement: PostgresPreparedStatement {
    static let sql = """
        WITH q AS MATERIALIZED (
          SELECT q.concurrency IS NOT NULL AS counted, q.rate_limit IS NOT NULL AS rated, skipper.limits_of(q) AS limits
          FROM skipper.queues q
          WHERE q.name = $4 AND NOT q.paused AND q.partition_by IS NULL AND (q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL)
            AND EXISTS (SELECT FROM skipper.runners r
                        WHERE r.id = $3 AND r.heartbeat_at > now() - r.lease_ms * interval '1 millisecond')
            AND NOT EXISTS (SELECT FROM skipper.kinds kd
                            WHERE kd.kind = ANY($1::text[]) AND (kd.concurrency IS NOT NULL OR kd.rate_limit IS NOT NULL))),
        shares AS MATERIALIZED (
          SELECT s.scope FROM skipper.limit_shards s, q
          WHERE s.runner = $3 AND s.dealt_for = q.limits AND s.room >= $2
            AND ((q.counted AND s.scope = 'queue ' || $4) OR (q.rated AND s.scope = 'queue-rate ' || $4))
          ORDER BY s.scope = 'queue-rate ' || $4
          FOR UPDATE OF s),
        ready AS MATERIALIZED (
          SELECT coalesce((SELECT count(*) FROM shares) = (SELECT q.counted::int + q.rated::int FROM q), false) AS ok),
        u AS (
          UPDATE skipper.jobs_active j
          SET status = 'RUNNING', attempt = least(j.attempt, 2147483646) + 1, started_at = clock_timestamp(), runner_id = $3,
              lease = (SELECT nextval('skipper.job_leases'))
          WHERE j.id = ANY(ARRAY(
              SELECT w.id FROM skipper.jobs_active w
              WHERE (SELECT ok FROM ready)
                AND w.status = 'QUEUED' AND w.finished_at IS NULL AND w.queue = $4 AND w.run_at <= now()
                AND (w.priority, w.run_at, w.id) > ($5::int2, $6::timestamptz, $7::int8) AND w.kind = ANY($1::text[])
              ORDER BY w.priority, w.run_at, w.id LIMIT $2 FOR UPDATE SKIP LOCKED))
            AND j.status || '' = 'QUEUED' AND j.finished_at IS NULL
          RETURNING j.id, j.lease, j.queue, j.kind, j.args::text AS args, j.attempt, j.max_attempts, j.meta::text AS meta,
                    j.meta->>'request_id' AS request_id, j.priority, j.run_at, j.timeout_ms, j.started_at),
        taken AS (SELECT count(*)::int4 AS n, max(u.started_at) AS at FROM u),
        lowered AS (
          UPDATE skipper.limit_shards s SET room = s.room - taken.n
          FROM shares, taken WHERE taken.n > 0 AND s.scope = shares.scope AND s.runner = $3),
        -- Stamped when the jobs started, as the counting claim stamps them.
        started AS (
          INSERT INTO skipper.rate_starts (scope, started_at, jobs)
          SELECT 'queue ' || $4, taken.at, taken.n FROM taken, q WHERE q.rated AND taken.n > 0)
        SELECT u.id, u.lease, u.queue, u.kind, u.args, u.attempt, u.max_attempts, u.meta, u.request_id, u.priority, u.run_at,
               u.timeout_ms, false AS turn
        FROM u
        UNION ALL
        SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true FROM ready WHERE NOT ready.ok
        """
    /// The same parameters as the unlimited claim's.
    static let bindingDataTypes = ClaimStatement.bindingDataTypes
    /// A claimed job, or nil: take the queue's turn.
    typealias Row = ClaimedJob?

    let claim: ClaimStatement

    func makeBindings() throws -> PostgresBindings { try self.claim.makeBindings() }

    func decodeRow(_ row: PostgresRow) throws -> ClaimedJob? {
        try row.makeRandomAccess()[12].decode(Bool.self) ? nil : try ClaimedJob(row: row)
    }
}

/// Finished attempts, one statement for every outcome, each fenced on its claim (a lease token belongs to one claim
/// of one runner: it is the whole fence); prepared once per connection.
///
/// `status || '' = 'RUNNING'` (here and in the claim's `'QUEUED'`) says what `status = 'RUNNING'` says in a form no
/// partial index matches: the statement then fetches each job by id. Otherwise the planner, trusting statistics that
/// count few RUNNING jobs, may walk the whole `status = 'RUNNING'` index for each batch, and under load that index
/// is mostly entries of jobs finished since the last vacuum.
struct FinishStatement: PostgresPreparedStatement {
    static let sql = """
        WITH f AS (
          SELECT * FROM unnest($1::int8[], $2::int8[], $3::int2[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[])
            AS f(id, lease, outcome, result, error, delay_ms, processed, total)),
        u AS (
          UPDATE skipper.jobs j
          SET status = skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at),
              finished_at = CASE WHEN skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) = 'QUEUED'
                                 THEN NULL ELSE now() END,
              run_at = CASE WHEN skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) <> 'QUEUED' THEN j.run_at
                            WHEN f.outcome IN (1, 5) THEN now() + f.delay_ms * interval '1 millisecond'
                            ELSE now() END,
              attempt = CASE WHEN f.outcome IN (4, 5) THEN j.attempt - 1 ELSE j.attempt END,
              snoozed = j.snoozed + CASE WHEN f.outcome = 5 THEN 1 ELSE 0 END,
              runner_id = CASE WHEN skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) = 'QUEUED'
                               THEN NULL ELSE j.runner_id END,
              started_at = CASE WHEN f.outcome IN (4, 5) THEN NULL ELSE j.started_at END,
              result = CASE WHEN f.outcome = 0 THEN nullif(f.result, 'null')::jsonb ELSE j.result END,
              errors = CASE WHEN f.outcome IN (1, 2)
                            THEN (CASE WHEN jsonb_typeof(j.errors) <> 'array' THEN jsonb_build_array(j.errors)
                                       WHEN jsonb_array_length(j.errors) >= \(JobStore.maxErrors) THEN j.errors - 0 ELSE j.errors END)
                                 || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'at', now(), 'error', f.error, 'runner', j.runner_id))
                            ELSE j.errors END,
              unique_key = CASE WHEN j.unique_key IS NULL
                                  OR skipper.finish_status(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) <> 'QUEUED'
                                THEN j.unique_key
                                WHEN $9 OR EXISTS (SELECT 1 FROM skipper.jobs o
                                     WHERE o.status = 'QUEUED' AND o.finished_at IS NULL AND o.kind = j.kind
                                       AND o.unique_key = j.unique_key)
                                THEN NULL
                                ELSE j.unique_key END,
              processed = CASE WHEN f.processed >= 0 THEN f.processed ELSE j.processed END,
              total = CASE WHEN f.total >= 0 THEN f.total ELSE j.total END
          FROM f
          WHERE j.id = f.id AND j.lease = f.lease AND j.status || '' = 'RUNNING' AND j.finished_at IS NULL
          RETURNING j.id, j.lease, j.queue, j.status, j.finished_at,
                    f.processed >= 0 OR f.outcome <> 0 OR j.meta ? '\(announceFinishKey)' AS watched),
        \(JobStore.countFinished(from: "u"))
        SELECT u.id, u.lease FROM u
        LEFT JOIN LATERAL (SELECT pg_notify('\(Channel.events)', u.id::text) WHERE u.watched) n ON true
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .int8Array, .int8Array, .int2Array, .textArray, .textArray, .int8Array, .int8Array, .int8Array, .bool,
    ]
    typealias Row = Claim

    let ids: [Int64]
    let leases: [Int64]
    let outcomes: [Int16]
    let results: [String]
    let errors: [String]
    let delays: [Int64]
    let processed: [Int64]
    let totals: [Int64]
    let clearKeys: Bool

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 9)
        bindings.append(self.ids)
        bindings.append(self.leases)
        bindings.append(self.outcomes)
        bindings.append(self.results)
        bindings.append(self.errors)
        bindings.append(self.delays)
        bindings.append(self.processed)
        bindings.append(self.totals)
        bindings.append(self.clearKeys)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Claim {
        let cells = row.makeRandomAccess()
        return Claim(jobID: try cells[0].decode(Int64.self), lease: try cells[1].decode(Int64.self))
    }
}

/// Plain completions (no result, no progress), fenced like every finish: what `FinishStatement` does for outcome 0
/// with nothing else to write (a completed job is COMPLETED whether or not a cancel was requested), without its eight
/// arrays and per-row decisions. Not announced on `skipper_events`, as plain completions never are.
struct CompleteStatement: PostgresPreparedStatement {
    static let sql = """
        WITH u AS (
          UPDATE skipper.jobs j
          SET status = 'COMPLETED', finished_at = now(), result = NULL
          FROM unnest($1::int8[], $2::int8[]) AS f(id, lease)
          WHERE j.id = f.id AND j.lease = f.lease AND j.status || '' = 'RUNNING' AND j.finished_at IS NULL
          RETURNING j.id, j.lease, j.queue, j.status, j.finished_at),
        \(JobStore.countFinished(from: "u"))
        SELECT u.id, u.lease FROM u
        """
    static let bindingDataTypes: [PostgresDataType] = [.int8Array, .int8Array]
    typealias Row = Claim

    let ids: [Int64]
    let leases: [Int64]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(self.ids)
        bindings.append(self.leases)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Claim {
        let cells = row.makeRandomAccess()
        return Claim(jobID: try cells[0].decode(Int64.self), lease: try cells[1].decode(Int64.self))
    }
}
