import Foundation
import Logging
import PostgresNIO
import Skipper

/// `settlement {"from": "2025-01-01", "to": "2025-01-31"}`: PAID transactions of [from, to] aggregated per merchant
/// per day into `settlements`, with a CSV artifact of the rows written.
///
/// PostgreSQL does the work: the range is cut into days or parts of days of about `batch_size` transactions, aggregated
/// set-based into `settlement_staging` over up to `parallelism` connections, then published in one short
/// transaction that replaces the range's rows and writes the CSV in chunks (one per day). A cancelled, failed or crashed
/// run therefore leaves `settlements` as it was, and a repeated run writes the same figures.
public struct Settlement: JobHandler {
    public struct Args: Codable, Sendable {
        public var from: String
        public var to: String
        /// Transactions per slice; default `BATCH_SIZE` of the runner (10,000).
        public var batch_size: Int?
        /// Slices aggregated at once; default 2.
        public var parallelism: Int?

        public init(from: String, to: String, batch_size: Int? = nil, parallelism: Int? = nil) {
            self.from = from
            self.to = to
            self.batch_size = batch_size
            self.parallelism = parallelism
        }
    }

    public struct Output: Codable, Sendable {
        public var transactions: Int64
        public var settlements: Int64
        public var csv_bytes: Int64
    }

    public static let kind = "settlement"
    public static let artifactName = "settlement.csv"
    public static let csvHeader = "merchant_id,date,gross_cents,fee_cents,net_cents,txn_count"
    /// The advisory lock that serialises publishes (any value of our own; "settle" in ASCII).
    static let publishLock: Int64 = 0x73_65_74_74_6C_65

    let defaultBatchSize: Int

    public init(defaultBatchSize: Int = 10_000) {
        self.defaultBatchSize = defaultBatchSize
    }

    /// The checked range: both dates parse (YYYY-MM-DD), from ≤ to, at most 366 days. The error names the field.
    public static func validate(_ args: Args) throws(ArgumentsError) -> (from: Date, to: Date) {
        guard let from = Self.day(args.from) else { throw ArgumentsError(field: "from", message: "must be a date such as 2025-01-01, not '\(args.from)'") }
        guard let to = Self.day(args.to) else { throw ArgumentsError(field: "to", message: "must be a date such as 2025-01-31, not '\(args.to)'") }
        guard from <= to else { throw ArgumentsError(field: "to", message: "must not be before from (\(args.from))") }
        guard to.timeIntervalSince(from) <= 365 * 86_400 else {
            throw ArgumentsError(field: "to", message: "the range may span at most 366 days")
        }
        if let size = args.batch_size, !(100...1_000_000).contains(size) {
            throw ArgumentsError(field: "batch_size", message: "must be between 100 and 1000000")
        }
        if let parallelism = args.parallelism, !(1...16).contains(parallelism) {
            throw ArgumentsError(field: "parallelism", message: "must be between 1 and 16")
        }
        return (from, to)
    }

    /// The same checks at submit time (`POST /jobs` with kind `settlement`, and `POST /jobs/settlement`).
    public func check(_ args: Args) throws {
        _ = try Self.validate(args)
    }

    /// A date written exactly YYYY-MM-DD (as the API's `format: date` says), or nil.
    static func day(_ text: String) -> Date? {
        let digits = Array(text.utf8)
        guard digits.count == 10, digits[4] == UInt8(ascii: "-"), digits[7] == UInt8(ascii: "-"),
            digits.enumerated().allSatisfy({ $0.offset == 4 || $0.offset == 7 || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0.element) })
        else { return nil }
        let parts = text.split(separator: "-")
        guard parts.count == 3, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = DateComponents(year: y, month: m, day: d)
        guard components.isValidDate(in: calendar), let date = calendar.date(from: components) else { return nil }
        return date
    }

    public func run(_ args: Args, context: JobContext) async throws -> Output? {
        let range: (from: Date, to: Date)
        do {
            range = try Self.validate(args)
        } catch {
            throw JobError.permanent("invalid args: \(error)")
        }
        let start = range.from
        let end = range.to.addingTimeInterval(86_400)  // exclusive
        // One run per claim: the lease token is never reused, so two executions of the job never share staging rows.
        let runID = "\(context.jobID)-\(context.lease)"
        let logger = context.logger
        let batchSize = Int64(args.batch_size ?? self.defaultBatchSize)
        let parallelism = args.parallelism ?? 2

        // Leftovers of runs whose claim no longer holds its job: earlier claims of this job, and runs of jobs that
        // ended without clearing them (a crash, a runner stopped while cancelling; a cancelled job never runs again to
        // clear its own). A run that still holds its job (RUNNING under its lease) keeps its rows; a superseded one
        // still running somewhere can never publish, and clears its own rows when its publish is refused.
        _ = try await context.withConnection { connection in
            try await connection.query(
                """
                DELETE FROM settlement_staging s
                USING (SELECT DISTINCT run_id FROM settlement_staging WHERE run_id ~ '^[0-9]{1,18}-[0-9]{1,18}$') r
                WHERE s.run_id = r.run_id AND r.run_id <> \(runID)
                  AND NOT EXISTS (SELECT 1 FROM skipper.jobs j
                                  WHERE j.id = split_part(r.run_id, '-', 1)::int8 AND j.lease = split_part(r.run_id, '-', 2)::int8
                                    AND j.status = 'RUNNING' AND j.finished_at IS NULL)
                """,
                logger: logger)
        }
        let total = try await context.withConnection { connection -> Int64 in
            let rows = try await connection.query(
                "SELECT count(*) FROM transactions WHERE status = 'PAID' AND paid_at >= \(start) AND paid_at < \(end)", logger: logger)
            for try await count in rows.decode(Int64.self) { return count }
            return 0
        }
        context.progress(processed: 0, total: total)

        let slices = Self.slices(from: start, to: end, total: total, batchSize: batchSize)
        do {
            var processed: Int64 = 0
            try await withThrowingTaskGroup(of: Int64.self) { group in
                var next = 0
                func addSlice() {
                    let (from, to) = slices[next]
                    next += 1
                    group.addTask {
                        try await context.withConnection { connection in
                            try await Self.stage(runID: runID, from: from, to: to, on: connection, logger: logger)
                        }
                    }
                }
                while next < min(parallelism, slices.count) { addSlice() }
                while let done = try await group.next() {
                    processed += done
                    context.progress(processed: processed)
                    if next < slices.count { addSlice() }
                }
            }
            // Published only while this attempt still holds its claim, checked and locked in the publish's transaction:
            // a superseded attempt gets ClaimLost and publishes nothing.
            let staged = processed
            let output = try await context.withFencedTransaction { connection in
                try await Self.publish(runID: runID, jobID: context.jobID, from: start, to: range.to, processed: staged, on: connection, logger: logger)
            }
            context.progress(processed: processed, total: total)
            return output
        } catch {
            // Cancelled or failed: nothing was published; drop this run's partial results (outside this cancelled
            // task; a retry of the job would clear them too, but a cancelled job is never retried).
            await Task.detached {
                for attempt in 1...3 {
                    do {
                        try await context.postgres.query("DELETE FROM settlement_staging WHERE run_id = \(runID)", logger: logger)
                        return
                    } catch {
                        logger.warning("clearing staged rows failed", metadata: ["error": "\(String(reflecting: error))", "attempt": "\(attempt)"])
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
            }.value
            throw error
        }
    }

    /// Cuts [from, to) into time slices "in batches of batch_size transactions or by day": whole days (several quiet
    /// days together) while a day holds up to 4 × batch_size transactions, else each day in equal parts of about
    /// batch_size. Slices never straddle a day, so each (merchant, day) is staged by one slice only when days are whole.
    static func slices(from start: Date, to end: Date, total: Int64, batchSize: Int64) -> [(Date, Date)] {
        let days = max(1, Int((end.timeIntervalSince(start) / 86_400).rounded()))
        let perDay = Double(total) / Double(days)
        let day = 86_400.0
        var slices: [(Date, Date)] = []
        if perDay <= Double(4 * batchSize) {
            let daysPerSlice = max(1, Int(Double(batchSize) / max(perDay, 1)))
            var first = 0
            while first < days {
                let last = min(days, first + daysPerSlice)
                slices.append((start.addingTimeInterval(day * Double(first)), start.addingTimeInterval(day * Double(last))))
                first = last
            }
        } else {
            let parts = Int((perDay / Double(batchSize)).rounded(.up))
            for d in 0..<days {
                for part in 0..<parts {
                    let from = start.addingTimeInterval(day * Double(d) + day * Double(part) / Double(parts))
                    let to = part == parts - 1 ? start.addingTimeInterval(day * Double(d + 1)) : start.addingTimeInterval(day * Double(d) + day * Double(part + 1) / Double(parts))
                    slices.append((from, to))
                }
            }
        }
        return slices
    }

    /// Aggregates one slice into staging; returns how many transactions it covered.
    static func stage(runID: String, from: Date, to: Date, on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        let rows = try await connection.query(
            """
            WITH agg AS (
              INSERT INTO settlement_staging (run_id, merchant_id, date, gross_cents, fee_cents, txn_count)
              SELECT \(runID), merchant_id, (paid_at AT TIME ZONE 'UTC')::date, sum(amount_cents), sum(fee_cents), count(*)
              FROM transactions
              WHERE status = 'PAID' AND paid_at >= \(from) AND paid_at < \(to)
              GROUP BY 2, 3
              RETURNING txn_count)
            SELECT coalesce(sum(txn_count), 0)::int8 FROM agg
            """,
            logger: logger)
        for try await count in rows.decode(Int64.self) { return count }
        return 0
    }

    /// Publishes a run inside the caller's (fenced) transaction: replaces the rows of its range with its own, writes
    /// the CSV artifact in chunks, and clears its staging rows.
    static func publish(
        runID: String, jobID: Int64, from: Date, to: Date, processed: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> Output {
        let fromDay = Self.dayString(from)
        let toDay = Self.dayString(to)
        // At most one publish per job: an earlier attempt may have published and died before its completion was
        // written (at-least-once runs it again). Its CSV is written in the same transaction as its rows, so the CSV's
        // presence means it published; report what it published rather than publish again.
        let earlier = try await connection.query(
            """
            SELECT count(*), coalesce(sum(octet_length(data)), 0)::int8 FROM skipper.job_artifacts
            WHERE job_id = \(jobID) AND name = \(Self.artifactName)
            """,
            logger: logger)
        for try await (chunks, bytes) in earlier.decode((Int64, Int64).self) where chunks > 0 {
            try await connection.query("DELETE FROM settlement_staging WHERE run_id = \(runID)", logger: logger)
            let rows = try await connection.query(
                "SELECT count(*) FROM settlements WHERE unique_run_id LIKE \("\(jobID)-%") AND date BETWEEN \(fromDay)::date AND \(toDay)::date",
                logger: logger)
            var settled: Int64 = 0
            for try await count in rows.decode(Int64.self) { settled = count }
            logger.info("this job's settlement was published by an earlier attempt; not publishing again")
            return Output(transactions: processed, settlements: settled, csv_bytes: bytes)
        }
        // Publishes serialise on an advisory lock, so a run replaces its range's rows wholesale: delete the range,
        // insert the run's rows (a plain INSERT costs PostgreSQL 40 % less than INSERT … ON CONFLICT), and write the
        // CSV, one chunk per day (chunk 0 is the header), from the same aggregate.
        try await connection.perform("SELECT pg_advisory_xact_lock(\(Self.publishLock))", logger: logger)
        try await connection.query(
            "DELETE FROM settlements WHERE date BETWEEN \(fromDay)::date AND \(toDay)::date", logger: logger)
        let rows = try await connection.query(
            """
            WITH agg AS (
              SELECT merchant_id, date, sum(gross_cents)::int8 AS gross, sum(fee_cents)::int8 AS fee, sum(txn_count)::int8 AS n
              FROM settlement_staging WHERE run_id = \(runID)
              GROUP BY merchant_id, date),
            inserted AS (
              INSERT INTO settlements (merchant_id, date, gross_cents, fee_cents, net_cents, txn_count, generated_at, unique_run_id)
              SELECT merchant_id, date, gross, fee, gross - fee, n, now(), \(runID) FROM agg
              RETURNING 1),
            csv AS (
              INSERT INTO skipper.job_artifacts (job_id, name, content_type, seq, data)
              SELECT \(jobID), \(Self.artifactName), 'text/csv', 0, convert_to(\(Self.csvHeader + "\n"), 'UTF8')
              UNION ALL
              SELECT \(jobID), \(Self.artifactName), 'text/csv', 1 + (date - \(fromDay)::date),
                     convert_to(string_agg(concat_ws(',', merchant_id, to_char(date, 'YYYY-MM-DD'), gross, fee, gross - fee, n)
                                           || E'\\n', '' ORDER BY merchant_id), 'UTF8')
              FROM agg GROUP BY date
              RETURNING octet_length(data) AS bytes)
            SELECT (SELECT count(*) FROM inserted)::int8, (SELECT coalesce(sum(bytes), 0) FROM csv)::int8
            """,
            logger: logger)
        var output = Output(transactions: processed, settlements: 0, csv_bytes: 0)
        for try await (count, bytes) in rows.decode((Int64, Int64).self) {
            output.settlements = count
            output.csv_bytes = bytes
        }
        try await connection.query("DELETE FROM settlement_staging WHERE run_id = \(runID)", logger: logger)
        return output
    }

    static func dayString(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day())
    }
}
