import Foundation
import Logging
import PostgresNIO

/// What one tick of a schedule did.
package enum TickOutcome: Sendable, Equatable {
    /// A job was made for the tick.
    case enqueued(jobID: Int64, tick: Date, queue: String)
    /// Nothing was due, the schedule is paused or gone, or another runner holds it right now.
    case nothing
    /// Its first tick was computed (a schedule written without one).
    case scheduled
    /// Missed ticks were skipped (catch-up `none`).
    case skipped
    /// Its expression does not parse here (written with SQL, or a time zone this runner's system does not know):
    /// nothing is written, so a runner that can parse it makes the tick.
    case invalid(String)
}

/// Periodic jobs in `skipper.schedules`: declared by runners' programs or made over REST, ticked by every runner.
extension JobStore {
    /// Writes `job` (creating it or replacing its definition; a pause set on it stays) and returns it as JSON, and
    /// whether it was created. Its next tick is computed from now, unless its expression and time zone are unchanged.
    public func saveSchedule(_ job: PeriodicJob, source: String) async throws -> (json: String, created: Bool) {
        let next = job.schedule.next(after: Date())
        let rows = try await self.client.query(
            """
            INSERT INTO skipper.schedules AS s (name, cron, timezone, kind, args, queue, priority, max_attempts, timeout_ms,
                                                catch_up, source, next_run_at)
            VALUES (\(job.name), \(job.schedule.expression), \(job.schedule.timeZone), \(job.kind), \(job.args)::jsonb, \(job.queue),
                    \(job.priority), \(job.maxAttempts), \(job.timeout.map { Int32(clamping: max(1, $0.milliseconds)) }),
                    \(job.catchUp.rawValue), \(source), coalesce(\(next)::timestamptz, 'infinity'))
            ON CONFLICT (name) DO UPDATE SET
              cron = excluded.cron, timezone = excluded.timezone, kind = excluded.kind, args = excluded.args,
              queue = excluded.queue, priority = excluded.priority, max_attempts = excluded.max_attempts,
              timeout_ms = excluded.timeout_ms, catch_up = excluded.catch_up, source = excluded.source,
              next_run_at = CASE WHEN s.cron = excluded.cron AND s.timezone = excluded.timezone AND isfinite(s.next_run_at)
                                 THEN s.next_run_at ELSE excluded.next_run_at END,
              updated_at = now()
            RETURNING (xmax = 0), \(unescaped: Self.scheduleJSON("s"))
            """,
            logger: self.logger)
        for try await (created, json) in rows.decode((Bool, String).self) { return (json, created) }
        throw QueueError.contention("saving schedule \(job.name) returned no row")
    }

    /// Every schedule (or only `name`) as JSON, by name.
    public func schedules(named name: String? = nil) async throws -> [String] {
        let rows = try await self.client.query(
            "SELECT \(unescaped: Self.scheduleJSON("s")) FROM skipper.schedules s WHERE \(name)::text IS NULL OR s.name = \(name) ORDER BY s.name",
            logger: self.logger)
        return try await Self.texts(rows)
    }

    /// Deletes a schedule (and its ticks' record; the jobs it made stay). False when there is none.
    public func deleteSchedule(named name: String) async throws -> Bool {
        let rows = try await self.client.query("DELETE FROM skipper.schedules WHERE name = \(name) RETURNING 1", logger: self.logger)
        for try await _ in rows.decode(Int32.self) { return true }
        return false
    }

    /// Pauses or resumes a schedule; its JSON, or nil when there is none. A resumed schedule's next tick is computed
    /// from now: ticks that fell while it was paused are not made.
    public func setSchedulePaused(named name: String, _ paused: Bool) async throws -> String? {
        let rows = try await self.client.query(
            """
            UPDATE skipper.schedules s SET paused = \(paused), updated_at = now(),
                   next_run_at = CASE WHEN \(paused) OR NOT s.paused THEN s.next_run_at ELSE NULL END
            WHERE s.name = \(name)
            RETURNING \(unescaped: Self.scheduleJSON("s"))
            """,
            logger: self.logger)
        for try await json in rows.decode(String.self) { return json }
        return nil
    }

    /// The schedule row aliased `alias` as the API's JSON (compact, in this order; `next_run_at` null when there is
    /// no next tick).
    static func scheduleJSON(_ alias: String) -> String {
        """
        (SELECT row_to_json(x)::text FROM (
           SELECT \(alias).name, \(alias).cron, \(alias).timezone, \(alias).kind, \(alias).args, \(alias).queue, \(alias).priority,
                  \(alias).max_attempts, \(alias).timeout_ms, \(alias).catch_up, \(alias).paused, \(alias).source,
                  CASE WHEN isfinite(\(alias).next_run_at) THEN \(Self.apiTime("\(alias).next_run_at")) END AS next_run_at,
                  CASE WHEN isfinite(\(alias).last_run_at) THEN \(Self.apiTime("\(alias).last_run_at")) END AS last_run_at,
                  \(alias).last_job_id, \(Self.apiTime("\(alias).created_at")) AS created_at,
                  \(Self.apiTime("\(alias).updated_at")) AS updated_at) x)
        """
    }

    // MARK: - Ticking (runners)

    /// Schedules whose next tick has come (or that have none yet), and how long until the next one is due.
    package func dueSchedules() async throws -> (names: [String], nextIn: Duration?) {
        let rows = try await self.client.query(
            """
            (SELECT name, NULL::float8 FROM skipper.schedules
             WHERE NOT paused AND (next_run_at IS NULL OR next_run_at <= clock_timestamp())
             ORDER BY next_run_at NULLS FIRST LIMIT 1000)
            UNION ALL
            SELECT NULL, extract(epoch FROM min(next_run_at) - clock_timestamp())::float8 FROM skipper.schedules
            WHERE NOT paused AND next_run_at > clock_timestamp() AND isfinite(next_run_at)
            """,
            logger: self.logger)
        var names: [String] = []
        var nextIn: Duration?
        for try await (name, seconds) in rows.decode((String?, Double?).self) {
            if let name { names.append(name) }
            if let seconds { nextIn = .milliseconds(Int64(max(0, min(seconds, 86_400)) * 1000)) }
        }
        return (names, nextIn)
    }

    /// Makes the schedule's due tick, if it is due: in one transaction, under the schedule's row lock (a runner
    /// holding it is skipped, not waited for), the job is inserted, the tick recorded in `skipper.schedule_ticks`
    /// (whose primary key refuses a second job for one tick), and the next tick set. A runner that dies midway rolls
    /// all of it back.
    package func tick(schedule name: String) async throws -> TickOutcome {
        do {
            return try await self.client.withTransaction(logger: self.logger) { connection -> TickOutcome in
                // A runner frozen mid-tick (SIGSTOP, a paused VM) must not hold the schedule's row, which every other
                // runner skips, for longer than a moment: the server ends its session, rolling the tick back, and the
                // next runner makes it.
                try await connection.query("SET LOCAL idle_in_transaction_session_timeout = '2s'", logger: self.logger)
                try await connection.query("SET LOCAL statement_timeout = '10s'", logger: self.logger)
                let rows = try await connection.query(
                    """
                    SELECT cron, timezone, kind, args::text, queue, priority, max_attempts, timeout_ms, catch_up, next_run_at,
                           clock_timestamp()
                    FROM skipper.schedules WHERE name = \(name) AND NOT paused
                      AND (next_run_at IS NULL OR next_run_at <= clock_timestamp())
                    FOR UPDATE SKIP LOCKED
                    """,
                    logger: self.logger)
                var found: (String, String, String, String, String, Int16, Int32, Int32?, String, Date?, Date)?
                for try await row in rows.decode((String, String, String, String, String, Int16, Int32, Int32?, String, Date?, Date).self) {
                    found = row
                }
                guard let (cron, zone, kind, args, queue, priority, maxAttempts, timeout, catchUpText, due, now) = found else { return .nothing }
                let schedule: CronSchedule
                do {
                    schedule = try CronSchedule(cron, timeZone: zone)
                } catch {
                    return .invalid("\(error)")
                }
                guard let due else {
                    try await self.setNextTick(of: name, schedule.next(after: now), on: connection)
                    return .scheduled
                }
                let catchUp = PeriodicJob.CatchUp(rawValue: catchUpText) ?? .latest
                let next = schedule.next(after: now)
                guard let tick = PeriodicJob.tick(schedule, catchUp: catchUp, due: due, now: now) else {
                    try await self.setNextTick(of: name, next, on: connection)
                    return .skipped
                }
                // A tick already made (its next_run_at set back by hand): move on to the next, make nothing.
                let made = try await connection.query(
                    "SELECT 1 FROM skipper.schedule_ticks WHERE schedule = \(name) AND tick = \(tick)", logger: self.logger)
                for try await _ in made.decode(Int32.self) {
                    try await self.setNextTick(of: name, next, on: connection)
                    return .nothing
                }
                var options = JobOptions(queue: queue, priority: priority, maxAttempts: maxAttempts)
                options.timeout = timeout.map { .milliseconds(Int64($0)) }
                options.meta = ["schedule": name, "scheduled_for": tick.formatted(.iso8601)]
                let job = try await self.insert(kind: kind, args: args, options: options, on: connection)
                let recorded = try await connection.query(
                    """
                    INSERT INTO skipper.schedule_ticks (schedule, tick, job_id) VALUES (\(name), \(tick), \(job.id))
                    ON CONFLICT (schedule, tick) DO NOTHING RETURNING 1
                    """,
                    logger: self.logger)
                var fresh = false
                for try await _ in recorded.decode(Int32.self) { fresh = true }
                // Made meanwhile (the row lock makes this unreachable, short of a hand-made tick row): roll back.
                guard fresh else { throw TickAlreadyMade() }
                try await connection.query(
                    """
                    UPDATE skipper.schedules
                    SET next_run_at = coalesce(\(next)::timestamptz, 'infinity'), last_run_at = \(tick), last_job_id = \(job.id)
                    WHERE name = \(name)
                    """,
                    logger: self.logger)
                return .enqueued(jobID: job.id, tick: tick, queue: queue)
            }
        } catch let error as PostgresTransactionError {
            if error.closureError is TickAlreadyMade { return .nothing }
            if let inner = error.closureError { throw inner }
            throw error
        }
    }

    /// Sets a schedule's next tick (infinity when it has none).
    private func setNextTick(of name: String, _ next: Date?, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE skipper.schedules SET next_run_at = coalesce(\(next)::timestamptz, 'infinity') WHERE name = \(name)", logger: self.logger)
    }

    /// Forgets ticks older than a week (the jobs they made stay).
    package func pruneTicks() async throws {
        _ = try await self.client.query(
            "DELETE FROM skipper.schedule_ticks WHERE created_at < now() - interval '7 days'", logger: self.logger
        ).collect()
    }
}

private struct TickAlreadyMade: Error {}
