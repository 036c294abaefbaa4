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
}

extension JobStore {
    // MARK: - Runners

    /// Registers the runner (or refreshes its row) and records the kinds it serves in the durable registry.
    func register(_ runner: RunnerRecord) async throws {
        try await self.client.withTransaction(logger: self.logger) { connection in
            try await connection.query(
                """
                INSERT INTO skipper.runners (id, host, pid, queues, kinds, concurrency)
                VALUES (\(runner.id), \(runner.host), \(runner.pid), \(runner.queues)::text[], \(runner.kinds)::text[],
                        \(runner.concurrency))
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), queues = excluded.queues, kinds = excluded.kinds
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

    /// Renews the runner's lease on every job it holds. False when the row is gone (it was presumed dead).
    func heartbeat(runnerID: String) async throws -> Bool {
        let rows = try await self.client.query(
            "UPDATE skipper.runners SET heartbeat_at = now() WHERE id = \(runnerID) RETURNING 1", logger: self.logger)
        for try await _ in rows.decode(Int32.self) { return true }
        return false
    }

    /// Removes the runner's row at shutdown.
    func unregister(runnerID: String) async throws {
        try await self.client.query("DELETE FROM skipper.runners WHERE id = \(runnerID)", logger: self.logger)
    }

    // MARK: - Maintenance (leader only)

    /// Runs `body` in a transaction if this process wins the maintenance lock for it, so one runner at a time
    /// does maintenance; returns nil when another runner holds it.
    func asLeader<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T? {
        try await self.client.withTransaction(logger: self.logger) { connection -> T? in
            let rows = try await connection.query(
                "SELECT pg_try_advisory_xact_lock(\(Self.maintenanceLock))", logger: self.logger)
            var won = false
            for try await value in rows.decode(Bool.self) { won = value }
            guard won else { return nil }
            return try await body(connection)
        }
    }

    /// An advisory lock key of Skipper's own ("skipper" in ASCII).
    static let maintenanceLock: Int64 = 0x736B_6970_7065_72

    /// Puts RUNNING jobs whose runner stopped heartbeating more than `after` ago back to QUEUED (or FAILED when
    /// that was the last attempt, CANCELLED when a cancel was requested), then forgets those runners.
    func rescue(after: Duration, on connection: PostgresConnection) async throws -> [(id: Int64, status: String)] {
        let ms = after.milliseconds
        let rows = try await connection.query(
            """
            WITH stale AS (
              SELECT j.id FROM skipper.jobs j
              WHERE j.status = 'RUNNING'
                AND NOT EXISTS (SELECT 1 FROM skipper.runners r
                                WHERE r.id = j.runner_id AND r.heartbeat_at > now() - \(ms) * interval '1 millisecond')
              FOR UPDATE SKIP LOCKED),
            decided AS (
              SELECT j.id,
                     CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'CANCELLED'
                          WHEN j.attempt >= j.max_attempts THEN 'FAILED'
                          ELSE 'QUEUED' END AS next
              FROM skipper.jobs j JOIN stale USING (id))
            UPDATE skipper.jobs j
            SET status = d.next,
                finished_at = CASE WHEN d.next = 'QUEUED' THEN NULL ELSE now() END,
                run_at = CASE WHEN d.next = 'QUEUED' THEN now() ELSE j.run_at END,
                runner_id = CASE WHEN d.next = 'QUEUED' THEN NULL ELSE j.runner_id END,
                errors = j.errors || jsonb_build_array(jsonb_build_object(
                    'attempt', j.attempt, 'at', now(),
                    'error', 'runner ' || coalesce(j.runner_id, '?') || ' stopped heartbeating; the job was rescued')),
                unique_key = CASE WHEN d.next = 'QUEUED' AND EXISTS (SELECT 1 FROM skipper.jobs o
                                   WHERE o.unique_key = j.unique_key AND o.status = 'QUEUED') THEN NULL
                                  ELSE j.unique_key END
            FROM decided d WHERE j.id = d.id
            RETURNING j.id, j.status
            """,
            logger: self.logger)
        var rescued: [(id: Int64, status: String)] = []
        for try await (id, status) in rows.decode((Int64, String).self) { rescued.append((id, status)) }
        try await connection.query(
            "DELETE FROM skipper.runners WHERE heartbeat_at < now() - \(ms) * interval '1 millisecond'",
            logger: self.logger)
        return rescued
    }

    /// Deletes up to `limit` jobs that finished more than `retention` ago, oldest first.
    func prune(retention: Duration, limit: Int, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query(
            """
            WITH doomed AS (
              SELECT id FROM skipper.jobs
              WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')
                AND finished_at < now() - \(retention.milliseconds) * interval '1 millisecond'
              ORDER BY finished_at LIMIT \(Int64(limit))
              FOR UPDATE SKIP LOCKED)
            DELETE FROM skipper.jobs j USING doomed WHERE j.id = doomed.id
            RETURNING j.id
            """,
            logger: self.logger)
        var count = 0
        for try await _ in rows.decode(Int64.self) { count += 1 }
        return count
    }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 { self.components.seconds * 1000 + self.components.attoseconds / 1_000_000_000_000_000 }
}
