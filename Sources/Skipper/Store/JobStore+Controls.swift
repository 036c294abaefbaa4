import Foundation
import Logging
import PostgresNIO

/// A change of limits: a field left nil stays as it is; `.clear` removes the limit.
public struct LimitsChange: Sendable, Equatable {
    public enum Field<Value: Sendable & Equatable>: Sendable, Equatable {
        case set(Value)
        case clear
    }

    /// At most this many RUNNING jobs (per value of `partitionBy` when that is set).
    public var concurrency: Field<Int32>?
    /// An argument path, `args.merchant_id`: concurrency then counts per value of that argument.
    public var partitionBy: Field<String>?
    /// At most `limit` starts in any window of `period` (1 s to 7 days).
    public var rate: Field<RateLimit>?

    public init(concurrency: Field<Int32>? = nil, partitionBy: Field<String>? = nil, rate: Field<RateLimit>? = nil) {
        self.concurrency = concurrency
        self.partitionBy = partitionBy
        self.rate = rate
    }

    /// An argument path a limit can partition by: `args.` then one to eight keys of letters, digits, `_` or `-`.
    public static func isArgumentPath(_ path: String) -> Bool {
        let keys = path.split(separator: ".", omittingEmptySubsequences: false)
        guard keys.count >= 2, keys.count <= 9, keys[0] == "args" else { return false }
        return keys.dropFirst().allSatisfy { key in
            (1...64).contains(key.count) && key.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-") }
        }
    }
}

/// A rate limit: at most `limit` starts in any window of `period`.
public struct RateLimit: Sendable, Equatable {
    public var limit: Int32
    public var period: Duration

    public init(limit: Int32, period: Duration) {
        self.limit = limit
        self.period = period
    }
}

/// Queues and kinds as operators see and change them: pause flags and limits (`skipper.queues`, `skipper.kinds`).
/// Reads return the API's JSON, rendered by PostgreSQL.
extension JobStore {
    /// Every queue that has jobs or a row in `skipper.queues` (or only `name`), as JSON objects: counts per status,
    /// the oldest waiting job's age, the pause flag, the limits and how many live runners serve it.
    public func queues(named name: String? = nil) async throws -> [String] {
        let rows = try await self.client.query(
            """
            WITH stats AS (SELECT queue, status, jobs, oldest_age FROM skipper.queue_stats WHERE \(name)::text IS NULL OR queue = \(name)),
            names AS (SELECT queue AS name FROM stats UNION SELECT q.name FROM skipper.queues q WHERE \(name)::text IS NULL OR q.name = \(name)),
            live AS (
              SELECT unnest(r.queues) AS name, count(*) AS runners FROM skipper.runners r
              WHERE r.heartbeat_at > clock_timestamp() - r.lease_ms * interval '1 millisecond' GROUP BY 1)
            SELECT row_to_json(x)::text FROM (
              SELECT n.name AS queue, coalesce(q.paused, false) AS paused,
                     (SELECT row_to_json(c) FROM (
                        SELECT \(unescaped: JobStatus.allCases.map { "coalesce(sum(st.jobs) FILTER (WHERE st.status = '\($0.rawValue)'), 0)::int8 AS \"\($0.rawValue)\"" }.joined(separator: ", "))
                        FROM stats st WHERE st.queue = n.name) c) AS counts,
                     (SELECT extract(epoch FROM st.oldest_age)::float8 FROM stats st WHERE st.queue = n.name AND st.status = 'QUEUED')
                       AS oldest_queued_seconds,
                     \(unescaped: Self.limitsJSON("q")) AS limits,
                     coalesce(l.runners, 0) AS runners, \(unescaped: Self.apiTime("q.updated_at")) AS updated_at
              FROM names n LEFT JOIN skipper.queues q ON q.name = n.name LEFT JOIN live l ON l.name = n.name) x
            ORDER BY x.queue
            """,
            logger: self.logger)
        return try await Self.texts(rows)
    }

    /// Pauses or resumes a queue (creating its row: queues are named by jobs, which may not exist yet) and returns it.
    /// A resumed queue's runners are woken.
    public func setPaused(queue: String, _ paused: Bool) async throws -> String {
        _ = try await self.client.query(
            """
            WITH q AS (
              INSERT INTO skipper.queues AS q (name, paused) VALUES (\(queue), \(paused))
              ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = now()
              RETURNING q.name, q.paused)
            SELECT pg_notify(\(Channel.jobs), q.name) FROM q WHERE NOT q.paused
            """,
            logger: self.logger
        ).collect()
        return try await self.queues(named: queue).first ?? "{}"
    }

    /// Changes a queue's limits (creating its row) and returns it. PostgreSQL's checks refuse what does not hold
    /// together (a partition key without a concurrency): ``LimitsRefused``.
    public func setLimits(queue: String, _ change: LimitsChange) async throws -> String {
        try await self.applyLimits(table: "skipper.queues", key: "name", value: queue, change)
        return try await self.queues(named: queue).first ?? "{}"
    }

    /// Every kind runners registered or someone limited (or only `kind`), as JSON: its limits and when a runner last
    /// registered it.
    public func kinds(named kind: String? = nil) async throws -> [String] {
        let rows = try await self.client.query(
            """
            SELECT row_to_json(x)::text FROM (
              SELECT k.kind, \(unescaped: Self.limitsJSON("k")) AS limits, \(unescaped: Self.apiTime("k.first_seen_at")) AS first_seen_at,
                     \(unescaped: Self.apiTime("k.last_seen_at")) AS last_seen_at
              FROM skipper.kinds k WHERE \(kind)::text IS NULL OR k.kind = \(kind)) x
            ORDER BY x.kind
            """,
            logger: self.logger)
        return try await Self.texts(rows)
    }

    /// Changes the limits of a kind a runner registered (across every queue) and returns it; nil for a kind no runner
    /// registered (limiting it would make it look registered to submits).
    public func setLimits(kind: String, _ change: LimitsChange) async throws -> String? {
        guard try await self.isKnownKind(kind) else { return nil }
        try await self.applyLimits(table: "skipper.kinds", key: "kind", value: kind, change, create: false)
        return try await self.kinds(named: kind).first
    }

    /// A timestamptz column as the API writes times: RFC 3339 in UTC with milliseconds, `2026-01-31T12:00:00.000Z`.
    /// Every row's one text column (the API's JSON, rendered by PostgreSQL), in order.
    static func texts(_ rows: PostgresRowSequence) async throws -> [String] {
        var texts: [String] = []
        for try await text in rows.decode(String.self) { texts.append(text) }
        return texts
    }

    static func apiTime(_ column: String) -> String {
        #"to_char(\#(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#
    }

    /// The limits of a `skipper.queues` or `skipper.kinds` row aliased `alias` (or of none: all null), as JSON.
    static func limitsJSON(_ alias: String) -> String {
        """
        (SELECT row_to_json(l) FROM (
           SELECT \(alias).concurrency, \(alias).partition_by,
                  (SELECT row_to_json(r) FROM (
                     SELECT \(alias).rate_limit AS "limit",
                            CASE WHEN extract(milliseconds FROM \(alias).rate_period) % 1000 = 0
                                 THEN extract(epoch FROM \(alias).rate_period)::bigint || 's'
                                 ELSE round(extract(epoch FROM \(alias).rate_period) * 1000)::bigint || 'ms' END AS period) r
                   WHERE \(alias).rate_limit IS NOT NULL) AS rate) l)
        """
    }

    /// Writes `change` into the row of `table` whose `key` is `value`, creating the row when `create` (queues are named
    /// by jobs; kinds only by the runners that register them).
    private func applyLimits(table: String, key: String, value: String, _ change: LimitsChange, create: Bool = true) async throws {
        var concurrency: Int32?
        var partition: String?
        var rateLimit: Int32?
        var ratePeriod: Int64?
        if case .set(let number) = change.concurrency { concurrency = number }
        if case .set(let path) = change.partitionBy { partition = path }
        if case .set(let rate) = change.rate {
            rateLimit = rate.limit
            ratePeriod = rate.period.milliseconds
        }
        // Identifiers come from this file only; every value is bound.
        let sql = create
            ? """
            INSERT INTO \(table) AS t (\(key), concurrency, partition_by, rate_limit, rate_period)
            VALUES ($1, $3, $5, $7, $8 * interval '1 millisecond')
            ON CONFLICT (\(key)) DO UPDATE SET
              concurrency = CASE WHEN $2 THEN excluded.concurrency ELSE t.concurrency END,
              partition_by = CASE WHEN $4 THEN excluded.partition_by ELSE t.partition_by END,
              rate_limit = CASE WHEN $6 THEN excluded.rate_limit ELSE t.rate_limit END,
              rate_period = CASE WHEN $6 THEN excluded.rate_period ELSE t.rate_period END, updated_at = now()
            """
            : """
            UPDATE \(table) AS t SET
              concurrency = CASE WHEN $2 THEN $3 ELSE t.concurrency END,
              partition_by = CASE WHEN $4 THEN $5 ELSE t.partition_by END,
              rate_limit = CASE WHEN $6 THEN $7 ELSE t.rate_limit END,
              rate_period = CASE WHEN $6 THEN $8 * interval '1 millisecond' ELSE t.rate_period END
            WHERE t.\(key) = $1
            """
        var binds = PostgresBindings(capacity: 8)
        binds.append(value)
        binds.append(change.concurrency != nil)
        binds.append(concurrency)
        binds.append(change.partitionBy != nil)
        binds.append(partition)
        binds.append(change.rate != nil)
        binds.append(rateLimit)
        binds.append(ratePeriod)
        do {
            _ = try await self.client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: self.logger).collect()
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23514" {
            let constraint = error.serverInfo?[.constraintName] ?? ""
            if constraint.hasSuffix("_partition_check") {
                throw LimitsRefused(field: "partition_by", message: "needs a concurrency (the limit per value of the argument)")
            }
            throw LimitsRefused(field: "limits", message: "refused by \(constraint)")
        }
    }
}

/// Limits that do not hold together, as PostgreSQL's checks found.
public struct LimitsRefused: Error, CustomStringConvertible {
    public let field: String
    public let message: String
    public var description: String { "\(self.field): \(self.message)" }
}
