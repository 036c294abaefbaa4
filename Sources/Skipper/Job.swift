import Foundation
import NIOCore
import PostgresNIO

/// Where a job is in its life. The raw values are what `skipper.jobs.status` holds.
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    /// Waiting to be claimed (possibly not before `run_at`).
    case queued = "QUEUED"
    /// Held by a runner.
    case running = "RUNNING"
    /// Finished without error.
    case completed = "COMPLETED"
    /// Failed its last allowed attempt, or failed in a way no retry can fix.
    case failed = "FAILED"
    /// Cancelled before or while running.
    case cancelled = "CANCELLED"

    /// True for the states a job never leaves by itself.
    public var isFinished: Bool { self == .completed || self == .failed || self == .cancelled }
}

extension JobStatus: PostgresDecodable, PostgresEncodable, PostgresNonThrowingEncodable {
    public static var psqlType: PostgresDataType { .text }
    public static var psqlFormat: PostgresFormat { .binary }

    /// Decodes `skipper.jobs.status`; a value outside the five is an error, never a guess.
    public init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        let text = try String(from: &buffer, type: type, format: format, context: context)
        guard let status = Self(rawValue: text) else { throw PostgresDecodingError.Code.failure }
        self = status
    }

    public func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        self.rawValue.encode(into: &buffer, context: context)
    }
}

/// How to enqueue a job; every field has the schema's default.
public struct JobOptions: Sendable, Equatable {
    /// The named queue; runners choose which queues they serve. Default `default`.
    public var queue: String
    /// Lower runs first. Default 0.
    public var priority: Int16
    /// Not claimed before this time. Default: now.
    public var runAt: Date?
    /// Attempts allowed before the job is FAILED. Default 25.
    public var maxAttempts: Int32
    /// At most one QUEUED job per key: enqueueing again returns the queued job.
    public var uniqueKey: String?
    /// Free-form JSON object stored in `meta` (request id, submitter...).
    public var meta: [String: String]
    /// How long one attempt may run (whole milliseconds, 1 ms to 24 days); nil: the kind's default
    /// (``JobHandler/timeout``), if any.
    public var timeout: Duration?

    /// Options with the defaults, changed where given.
    public init(
        queue: String = "default", priority: Int16 = 0, runAt: Date? = nil, maxAttempts: Int32 = 25,
        uniqueKey: String? = nil, meta: [String: String] = [:], announceFinish: Bool = false, timeout: Duration? = nil
    ) {
        self.timeout = timeout
        self.queue = queue
        self.priority = priority
        self.runAt = runAt
        self.maxAttempts = maxAttempts
        self.uniqueKey = uniqueKey
        self.meta = meta
        self.announceFinish = announceFinish
    }

    /// `timeout` in whole milliseconds for `timeout_ms`: at least 1, at most Int32.max (24.8 days).
    var timeoutMilliseconds: Int32? {
        guard let timeout = self.timeout else { return nil }
        return Int32(clamping: max(1, timeout.milliseconds))
    }

    /// Runners announce this job's finish on `skipper_events`, so ``JobHandle/result(timeout:)`` sees it at once
    /// (else within a second). Each announced finish is a NOTIFY, which PostgreSQL serialises with every other
    /// notifying commit: set it on jobs someone awaits, not on the bulk of a busy queue. Kept in `meta`.
    public var announceFinish: Bool {
        get { self.meta[announceFinishKey] != nil }
        set { self.meta[announceFinishKey] = newValue ? "1" : nil }
    }
}

/// The result of an enqueue: the job's id, and whether an existing QUEUED job with the same unique key was returned.
public struct EnqueuedJob: Sendable, Equatable {
    /// The job's id in `skipper.jobs`.
    public let id: Int64
    /// False when the unique key matched a job already queued.
    public let inserted: Bool
}

/// One claim of one job: the job and the lease token its claim drew. A token is never reused (it comes from the
/// sequence `skipper.job_leases`), so it tells apart two executions of one job even under the same runner.
public struct Claim: Hashable, Sendable, CustomStringConvertible {
    /// The job's id.
    public let jobID: Int64
    /// The claim's token, in `skipper.jobs.lease` while the claim holds the job.
    public let lease: Int64

    public init(jobID: Int64, lease: Int64) {
        self.jobID = jobID
        self.lease = lease
    }

    public var description: String { "\(self.jobID)/\(self.lease)" }
}

/// A place in a queue's claim order (`priority, run_at, id`, the claim index's order): the next claim of the queue
/// resumes after it instead of walking again over the index entries of jobs claimed before, which stay in the index,
/// dead, until vacuum removes them (under load, the head of the index is mostly such entries).
public struct ClaimPosition: Sendable, Equatable, Comparable {
    public var priority: Int16
    /// `run_at` exactly as PostgreSQL stores a timestamptz: microseconds since 2000-01-01 UTC, with `Int64.min` and
    /// `Int64.max` for `-infinity` and `infinity` (a `Date` would not round-trip, nor hold the infinities).
    public var runAtMicroseconds: Int64
    public var id: Int64

    public init(priority: Int16, runAtMicroseconds: Int64, id: Int64) {
        self.priority = priority
        self.runAtMicroseconds = runAtMicroseconds
        self.id = id
    }

    /// Before every job: a claim from here walks from the head of the index (`-infinity` is before every run_at, so a
    /// row inserted with SQL at the earliest time is claimed like any other).
    public static let start = ClaimPosition(priority: .min, runAtMicroseconds: .min, id: 0)

    public static func < (a: Self, b: Self) -> Bool {
        (a.priority, a.runAtMicroseconds, a.id) < (b.priority, b.runAtMicroseconds, b.id)
    }
}

/// A timestamptz as PostgreSQL's binary format has it (microseconds since 2000-01-01 UTC; `Int64.min` and `Int64.max`
/// are `-infinity` and `infinity`): every value of the column round-trips, the infinities included.
struct RawTimestamp: PostgresDecodable, PostgresEncodable, PostgresNonThrowingEncodable {
    static var psqlType: PostgresDataType { .timestamptz }
    static var psqlFormat: PostgresFormat { .binary }

    let microseconds: Int64

    init(microseconds: Int64) {
        self.microseconds = microseconds
    }

    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard type == .timestamptz || type == .timestamp, format == .binary, buffer.readableBytes == 8,
            let value = buffer.readInteger(as: Int64.self)
        else { throw PostgresDecodingError.Code.typeMismatch }
        self.microseconds = value
    }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(self.microseconds)
    }
}

/// A job as a runner holds it after claiming it.
public struct ClaimedJob: Sendable, Equatable {
    /// The job's id.
    public let id: Int64
    /// The token of the claim that holds it: every write of the runner about this job is fenced on it.
    public let lease: Int64
    /// Its queue.
    public let queue: String
    /// Which handler runs it.
    public let kind: String
    /// The arguments as JSON text.
    public let args: String
    /// This attempt's number, from 1.
    public let attempt: Int32
    /// Attempts allowed.
    public let maxAttempts: Int32
    /// `meta` as JSON text.
    public let meta: String
    /// `meta.request_id`, read by the claim (the API's X-Request-ID), for the runner's log lines.
    public let requestID: String?
    /// Where the job stood in its queue's claim order, so the next claim can resume after it.
    public let position: ClaimPosition
    /// The job's own time limit per attempt (`timeout_ms`), if it has one.
    public var timeout: Duration? = nil

    /// The claim this is.
    public var claim: Claim { Claim(jobID: self.id, lease: self.lease) }
}

/// The controls on a runner's queues and kinds, as it last read them (`skipper.queues`, `skipper.kinds`).
package struct QueueControls: Sendable, Equatable {
    /// Queues no job is claimed from.
    package var paused: Set<String> = []
    /// Queues with a concurrency or rate limit.
    package var limited: Set<String> = []
    /// The kinds the runner handles that have a concurrency or rate limit.
    package var limitedKinds: Set<String> = []
    /// Limited queues whose concurrency limit is kept per partition key (their claims always count).
    package var partitioned: Set<String> = []

    package init() {}

    /// How the runner's next claim is made: one fast claim over `fast.queues` for `fast.kinds` (several queues in one
    /// statement), and one `skipper.claim_limited` call per entry of `limited`, each for its kinds: a limited queue
    /// with every kind, any other queue with the limited kinds only. Paused queues in neither.
    package func plan(queues: [String], kinds: [String]) -> (fast: (queues: [String], kinds: [String]), limited: [(queue: String, kinds: [String])]) {
        let open = queues.filter { !self.paused.contains($0) }
        let freeKinds = kinds.filter { !self.limitedKinds.contains($0) }
        let heldKinds = kinds.filter { self.limitedKinds.contains($0) }
        var fast: [String] = []
        var limited: [(queue: String, kinds: [String])] = []
        for queue in open {
            if self.limited.contains(queue) {
                limited.append((queue, kinds))
                continue
            }
            if !freeKinds.isEmpty { fast.append(queue) }
            if !heldKinds.isEmpty { limited.append((queue, heldKinds)) }
        }
        return ((fast, freeKinds), limited)
    }

    /// Whether a claim of `kinds` in `queue` may be taken from the runner's shares of the queue's limits (a queue
    /// limited as a whole, not per partition, and no limited kind among them).
    package func claimsFromShares(queue: String, kinds: [String]) -> Bool {
        self.limited.contains(queue) && !self.partitioned.contains(queue) && !kinds.contains(where: self.limitedKinds.contains)
    }

    /// Whether a claim of `kind` in `queue` goes through a limit (its finish then wakes the queue's runners).
    package func isLimited(queue: String, kind: String) -> Bool {
        self.limited.contains(queue) || self.limitedKinds.contains(kind)
    }
}
