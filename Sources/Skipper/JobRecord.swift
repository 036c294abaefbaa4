import Foundation
import PostgresNIO

/// A job as the API shows it: every column a user reads, decoded from one row, and rendered as the REST
/// resource. Rendering in Swift rather than with json_build_object keeps PostgreSQL's side of a submit as cheap
/// as the bare INSERT.
public struct JobRecord: Sendable, Equatable {
    public var id: Int64
    public var kind: String
    public var queue: String
    public var status: JobStatus
    public var processed: Int64
    public var total: Int64?
    public var attempt: Int32
    public var maxAttempts: Int32
    public var priority: Int16
    /// JSON text.
    public var args: String
    public var uniqueKey: String?
    public var runAt: Date
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var cancelRequestedAt: Date?
    /// JSON text (an array).
    public var errors: String
    /// JSON text, or nil.
    public var result: String?
    /// JSON text (an object).
    public var meta: String
    public var hasArtifact: Bool

    /// Every column but the artifact flag, in the order `init(row:)` decodes them.
    private static let rowColumns = """
        j.id, j.kind, j.queue, j.status, j.processed, j.total, j.attempt, j.max_attempts, j.priority, j.args::text,
        j.unique_key, j.run_at, j.created_at, j.started_at, j.finished_at, j.cancel_requested_at, j.errors::text,
        j.result::text, j.meta::text
        """

    /// The select list that `init(row:)` decodes, for a query on `skipper.jobs j`.
    static let columns = rowColumns + ", EXISTS (SELECT 1 FROM skipper.job_artifacts a WHERE a.job_id = j.id)"

    /// The same for a row just inserted, which cannot have an artifact yet.
    static let insertedColumns = rowColumns + ", false"

    init(row: PostgresRow, from start: Int = 0) throws {
        let cells = row.makeRandomAccess()
        func cell<T: PostgresDecodable>(_ index: Int, _: T.Type) throws -> T { try cells[start + index].decode(T.self) }
        self.id = try cell(0, Int64.self)
        self.kind = try cell(1, String.self)
        self.queue = try cell(2, String.self)
        self.status = JobStatus(rawValue: try cell(3, String.self)) ?? .queued
        self.processed = try cell(4, Int64.self)
        self.total = try cell(5, Int64?.self)
        self.attempt = try cell(6, Int32.self)
        self.maxAttempts = try cell(7, Int32.self)
        self.priority = try cell(8, Int16.self)
        self.args = try cell(9, String.self)
        self.uniqueKey = try cell(10, String?.self)
        self.runAt = try cell(11, Date.self)
        self.createdAt = try cell(12, Date.self)
        self.startedAt = try cell(13, Date?.self)
        self.finishedAt = try cell(14, Date?.self)
        self.cancelRequestedAt = try cell(15, Date?.self)
        self.errors = try cell(16, String.self)
        self.result = try cell(17, String?.self)
        self.meta = try cell(18, String.self)
        self.hasArtifact = try cell(19, Bool.self)
    }

    /// Percent done: from processed/total when the job reports them, 100 once COMPLETED, else 0.
    public var progress: Double {
        if let total, total > 0 { return min(100, (1000 * Double(self.processed) / Double(total)).rounded() / 10) }
        return self.status == .completed ? 100 : 0
    }

    /// Where the job's artifact downloads from, when it has one.
    public var downloadURL: String? { self.hasArtifact ? "/downloads/\(self.id).csv" : nil }

    /// The REST resource as JSON text.
    public var json: String {
        var out = "{"
        out.reserveCapacity(512 + self.args.utf8.count + self.errors.utf8.count + (self.result?.utf8.count ?? 0))
        out += #""job_id":\#(self.id),"kind":"# + Self.quote(self.kind)
        out += #","queue":"# + Self.quote(self.queue) + #","status":""# + self.status.rawValue + "\""
        out += #","progress":\#(self.progress),"processed":\#(self.processed),"total":"# + (self.total.map { "\($0)" } ?? "null")
        out += #","attempt":\#(self.attempt),"max_attempts":\#(self.maxAttempts),"priority":\#(self.priority)"#
        out += #","args":"# + self.args + #","unique_key":"# + (self.uniqueKey.map(Self.quote) ?? "null")
        out += #","run_at":"# + Self.time(self.runAt) + #","created_at":"# + Self.time(self.createdAt)
        out += #","started_at":"# + Self.time(self.startedAt) + #","finished_at":"# + Self.time(self.finishedAt)
        out += #","cancel_requested_at":"# + Self.time(self.cancelRequestedAt)
        out += #","errors":"# + self.errors + #","result":"# + (self.result ?? "null") + #","meta":"# + self.meta
        out += #","download_url":"# + (self.downloadURL.map(Self.quote) ?? "null") + "}"
        return out
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `"2026-11-23T10:31:09.123Z"`, or `null`.
    public static func time(_ date: Date?) -> String {
        guard let date else { return "null" }
        return "\"" + date.formatted(Self.timeStyle) + "\""
    }

    private static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)

    /// A JSON string literal.
    public static func quote(_ string: String) -> String {
        var out = "\""
        out.reserveCapacity(string.utf8.count + 2)
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
