import Foundation
import Logging
import PostgresNIO

/// A runner process as `skipper.runners` lists it.
struct RunnerRecord: Sendable {
    let id: String
    let host: String
    let pid: Int32
    let queues: [String]
    let kinds: [String]
    let concurrency: Int32
    /// `RESCUE_AFTER`: how long after its last heartbeat its jobs may be rescued.
    let lease: Duration
}

extension JobStore {
    // MARK: - Runners

    /// Registers the runner (or refreshes its row) and records the kinds it serves in the durable registry.
    func register(_ runner: RunnerRecord) async throws {
        try await self.client.withTransaction(logger: self.logger) { connection in
            try await connection.query(
                """
                INSERT INTO skipper.runners (id, host, pid, queues, kinds, concurrency, lease_ms, heartbeat_at)
                VALUES (\(runner.id), \(runner.host), \(runner.pid), \(runner.queues)::text[], \(runner.kinds)::text[],
                        \(runner.concurrency), \(runner.lease.milliseconds), clock_timestamp())
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp(), queues = excluded.queues,
                                              kinds = excluded.kinds, lease_ms = excluded.lease_ms
                """,
                logger: self.logger)
            try await connection.query(
                """
                INSERT INTO skipper.kinds (kind) SELECT unnest(\(runner.kinds)::text[]) ORDER BY 1
                ON CONFLICT (kind) DO UPDATE SET last_seen_at = now()
                """,
                logger: self.logger)
        }
    }

    /// Renews the runner's lease on every job it holds, recording when the write landed (the server's clock at the
    /// moment, not when a wait for a lock began). False when the row is gone (it was presumed dead).
    func heartbeat(runnerID: String) async throws -> Bool {
        // Committed before it counts: a renewal believed but rolled back would keep jobs running past their lease.
        !(try await self.committedRows("UPDATE skipper.runners SET heartbeat_at = clock_timestamp() WHERE id = \(runnerID) RETURNING 1")).isEmpty
    }

    /// Removes the runner's row at shutdown.
    func unregister(runnerID: String) async throws {
        try await self.client.query("DELETE FROM skipper.runners WHERE id = \(runnerID)", logger: self.logger)
    }

    // MARK: - Maintenance (leader only)

    /// The maintenance tasks, each elected on its own advisory lock, so one failing never holds up another.
    enum MaintenanceTask: Int64 {
        case rescue = 1
        case prune = 2
        case partitions = 3
        case cutover = 4
        case stats = 5
    }

    /// Runs `body` in a transaction if this process wins `task`'s lock, so one runner at a time does it; returns nil
    /// when another runner holds it. Transaction-scoped, so it also works behind a transaction-pooling PgBouncer.
    func asLeader<T: Sendable>(
        _ task: MaintenanceTask, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T? {
        try await self.client.withTransaction(logger: self.logger) { connection -> T? in
            let rows = try await connection.query(
                "SELECT pg_try_advisory_xact_lock(\(Self.maintenanceLock), \(Int32(task.rawValue)))", logger: self.logger)
            var won = false
            for try await value in rows.decode(Bool.self) { won = value }
            guard won else { return nil }
            return try await body(connection)
        }
    }

    /// An advisory lock key of Skipper's own ("skip" in ASCII), with the task as the second key.
    static let maintenanceLock: Int32 = 0x736B_6970

    /// Puts RUNNING jobs whose runner's lease ran out back to QUEUED (FAILED when that was the last attempt,
    /// CANCELLED when a cancel was requested), up to 1,000 per call. Each runner's lease is its own `lease_ms`,
    /// measured from when its last heartbeat landed by the server's clock. Jobs going back to QUEUED keep their unique
    /// key only when no QUEUED job (and no other rescued job) of their kind holds it, so a shared key never makes the
    /// statement fail. With `only`, just that job (to rescue jobs one by one when a batch is refused).
    func rescue(only: Int64? = nil, on connection: PostgresConnection) async throws -> [(id: Int64, status: JobStatus)] {
        let rows = try await connection.query(
            """
            WITH stale AS (
              SELECT j.id FROM skipper.jobs j
              WHERE j.status = 'RUNNING' AND j.finished_at IS NULL AND (\(only)::int8 IS NULL OR j.id = \(only)::int8)
                AND NOT EXISTS (SELECT 1 FROM skipper.runners r
                                WHERE r.id = j.runner_id
                                  AND r.heartbeat_at > clock_timestamp() - r.lease_ms * interval '1 millisecond')
              ORDER BY j.id LIMIT 1000
              FOR UPDATE SKIP LOCKED),
            decided AS (
              SELECT j.id, j.kind, j.unique_key,
                     CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'CANCELLED'
                          WHEN j.attempt >= j.max_attempts THEN 'FAILED'
                          ELSE 'QUEUED' END AS next
              FROM skipper.jobs j JOIN stale USING (id) WHERE j.status = 'RUNNING' AND j.finished_at IS NULL),
            keyed AS (
              SELECT d.*,
                     d.next = 'QUEUED' AND d.unique_key IS NOT NULL
                       AND (row_number() OVER (PARTITION BY d.next, d.kind, d.unique_key ORDER BY d.id) > 1
                            OR EXISTS (SELECT 1 FROM skipper.jobs o
                                       WHERE o.status = 'QUEUED' AND o.finished_at IS NULL AND o.kind = d.kind
                                         AND o.unique_key = d.unique_key))
                       AS drop_key
              FROM decided d),
            moved AS (
            UPDATE skipper.jobs j
            SET status = k.next,
                finished_at = CASE WHEN k.next = 'QUEUED' THEN NULL ELSE now() END,
                run_at = CASE WHEN k.next = 'QUEUED' THEN now() ELSE j.run_at END,
                runner_id = CASE WHEN k.next = 'QUEUED' THEN NULL ELSE j.runner_id END,
                -- A row whose errors is not an array (written by hand) keeps it, as the first entry of one.
                errors = (CASE WHEN jsonb_typeof(j.errors) <> 'array' THEN jsonb_build_array(j.errors)
                               WHEN jsonb_array_length(j.errors) >= \(Int32(Self.maxErrors)) THEN j.errors - 0 ELSE j.errors END)
                         || jsonb_build_array(jsonb_build_object(
                              'attempt', j.attempt, 'at', now(), 'runner', j.runner_id,
                              'error', 'runner ' || coalesce(j.runner_id, '?') || ' stopped heartbeating; the job was rescued')),
                unique_key = CASE WHEN k.drop_key THEN NULL ELSE j.unique_key END
            FROM keyed k WHERE j.id = k.id AND j.status = 'RUNNING' AND j.finished_at IS NULL
            RETURNING j.id, j.status, j.queue, j.finished_at),
            \(unescaped: Self.countFinished(from: "moved"))
            SELECT id, status FROM moved
            """,
            logger: self.logger)
        var rescued: [(id: Int64, status: JobStatus)] = []
        for try await (id, status) in rows.decode((Int64, JobStatus).self) { rescued.append((id, status)) }
        return rescued
    }

    /// Jobs a rescue would take now: RUNNING under a runner whose lease ran out.
    func stale(on connection: PostgresConnection) async throws -> [Int64] {
        let rows = try await connection.query(
            """
            SELECT j.id FROM skipper.jobs j
            WHERE j.status = 'RUNNING' AND j.finished_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM skipper.runners r
                              WHERE r.id = j.runner_id
                                AND r.heartbeat_at > clock_timestamp() - r.lease_ms * interval '1 millisecond')
            ORDER BY j.id LIMIT 1000
            """,
            logger: self.logger)
        var ids: [Int64] = []
        for try await id in rows.decode(Int64.self) { ids.append(id) }
        return ids
    }

    /// Forgets runners whose lease ran out (their jobs are rescued); one that is alive after all registers again.
    func forgetDeadRunners(on connection: PostgresConnection) async throws {
        // SKIP LOCKED: a runner row someone holds (its own heartbeat, stuck behind a lock) is left for a later round
        // rather than holding up this one.
        try await connection.query(
            """
            DELETE FROM skipper.runners WHERE id IN (
              SELECT id FROM skipper.runners WHERE heartbeat_at < clock_timestamp() - lease_ms * interval '1 millisecond'
              FOR UPDATE SKIP LOCKED)
            """,
            logger: self.logger)
    }

    /// Retention of the daily partitions: drops those whose every job finished more than `retention` ago, with their
    /// artifacts and counts, and creates the next `daysAhead` days' partitions. A partition comes and goes with a
    /// moment of the active partition's lock; the wait for it is bounded (`lock_timeout`), so it never stalls the
    /// queue for long: when busy, it is left for the next round. Returns the jobs dropped.
    func rotatePartitions(retention: Duration, daysAhead: Int, on connection: PostgresConnection) async throws -> Int64 {
        try await connection.query("SET LOCAL lock_timeout = '500ms'", logger: self.logger)
        var dropped: Int64 = 0
        let rows = try await connection.query(
            "SELECT skipper.drop_job_partitions(\(retention.milliseconds) * interval '1 millisecond')", logger: self.logger)
        for try await count in rows.decode(Int64.self) { dropped = count }
        try await connection.perform("SELECT skipper.create_job_partitions(\(Int32(daysAhead)))", logger: self.logger)
        return dropped
    }

    /// After a migration of a big table: validates the active partition's cutover constraint (a scan that blocks no
    /// one), after which daily partitions can be made without scanning it. True when it is (now) validated.
    func validateCutover(on connection: PostgresConnection) async throws -> Bool {
        for try await validated in try await connection.query("SELECT skipper.validate_cutover()", logger: self.logger).decode(Bool.self) {
            return validated
        }
        return false
    }

    /// Deletes up to `limit` jobs finished more than `retention` ago that live in the active partition: jobs that
    /// finished before the cutover to daily partitions (after a migration), oldest first.
    func pruneActive(retention: Duration, limit: Int, on connection: PostgresConnection) async throws -> Int {
        // skipper.prune_finished: with the owner's rights, it deletes only finished jobs (the runner may not delete).
        let rows = try await connection.query(
            "SELECT skipper.prune_finished(\(max(retention.milliseconds, 60_000)), \(Int32(clamping: limit)))", logger: self.logger)
        var count: Int64 = 0
        for try await value in rows.decode(Int64.self) { count = value }
        return Int(count)
    }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 { self.components.seconds * 1000 + self.components.attoseconds / 1_000_000_000_000_000 }
}
