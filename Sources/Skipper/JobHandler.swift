import Foundation

/// The code behind one job kind.
///
/// ```swift
/// struct Resize: JobHandler {
///     struct Args: Codable, Sendable { var url: String }
///     static let kind = "image.resize"
///     func run(_ args: Args, context: JobContext) async throws -> NoOutput? { ...; return nil }
/// }
/// ```
/// Cancellation reaches `run` as ordinary task cancellation. A thrown error fails the attempt (retried with
/// backoff while attempts remain); throw ``JobError`` to choose the retry delay or to fail without retry.
public protocol JobHandler: Sendable {
    /// The decoded `args`.
    associatedtype Args: Decodable & Sendable
    /// What `run` returns, stored as JSON in `result`.
    associatedtype Output: Encodable & Sendable = NoOutput

    /// The kind name jobs are enqueued with.
    static var kind: String { get }

    /// Runs one attempt. Return nil for no result.
    func run(_ args: Args, context: JobContext) async throws -> Output?

    /// The delay before retry `attempt + 1` after attempt `attempt` failed. Default: attempt⁴ seconds ± 10 %.
    func retryDelay(afterAttempt attempt: Int32) -> Duration

    /// Checks decoded arguments beyond their types (ranges, dates), throwing ``ArgumentsError`` naming the field,
    /// so the API can refuse them at submit time. Default: nothing more to check.
    func check(_ args: Args) throws

    /// How long one attempt of this kind may run when its job sets no `timeout` of its own: at the deadline the
    /// handler's task is cancelled and the attempt fails with "timed out after …" (retried like any failure).
    /// Default nil: no limit.
    var timeout: Duration? { get }
}

extension JobHandler {
    public func check(_ args: Args) throws {}

    public var timeout: Duration? { nil }

    public func retryDelay(afterAttempt attempt: Int32) -> Duration {
        Backoff.standard(afterAttempt: attempt)
    }
}

/// For handlers that return nothing.
public struct NoOutput: Codable, Sendable {}

/// Errors a handler throws to steer what happens to the job.
public enum JobError: Error, CustomStringConvertible {
    /// The longest retry delay: 30 days. A longer one is shortened to it.
    public static let maxRetryDelayMilliseconds: Int64 = 30 * 86_400_000

    /// Fail this attempt and retry after `delay` (while attempts remain; at most 30 days).
    case retry(after: Duration, message: String)
    /// Fail the job now, with no retry: the input can never work.
    case permanent(String)
    /// Not now: back to QUEUED, to run again after `delay` (at most 30 days), without spending an attempt. The job's
    /// `snoozed` counts how often.
    case snooze(Duration)

    public var description: String {
        switch self {
        case .retry(_, let message): return message
        case .permanent(let message): return message
        case .snooze(let delay): return "snoozed for \(delay)"
        }
    }
}

/// A handler with its types erased, as the runner keeps it.
public struct AnyJobHandler: Sendable {
    /// The kind it runs.
    public let kind: String
    /// Decodes `args` JSON, runs, and encodes the output as JSON text (nil for none).
    let execute: @Sendable (_ args: String, _ context: JobContext) async throws -> String?
    /// Checks that `args` JSON decodes and passes the handler's ``JobHandler/check(_:)``; throws ``ArgumentsError``
    /// naming the problem.
    public let validate: @Sendable (_ args: String) throws -> Void
    /// The handler's retry delay.
    let retryDelay: @Sendable (_ afterAttempt: Int32) -> Duration
    /// The kind's default time limit per attempt (``JobHandler/timeout``).
    public let timeout: Duration?

    /// Wraps a handler.
    public init<H: JobHandler>(_ handler: H) {
        self.kind = H.kind
        self.execute = { json, context in
            // The same checks as at submit time: a row inserted with SQL gets them too.
            let args = try ArgumentsError.decode(H.Args.self, from: json)
            try handler.check(args)
            guard let output = try await handler.run(args, context: context) else { return nil }
            if output is NoOutput { return nil }
            return String(decoding: try JSONEncoder().encode(output), as: UTF8.self)
        }
        self.validate = { json in try handler.check(try ArgumentsError.decode(H.Args.self, from: json)) }
        self.retryDelay = { handler.retryDelay(afterAttempt: $0) }
        self.timeout = handler.timeout
    }
}

/// Arguments that do not decode into a handler's `Args`; names the field when it can.
public struct ArgumentsError: Error, CustomStringConvertible {
    /// The JSON path of the offending field, e.g. `ms`; empty for the whole object.
    public let field: String
    /// What is wrong.
    public let message: String

    public var description: String { self.field.isEmpty ? self.message : "\(self.field): \(self.message)" }

    /// One decoder for every job's arguments (it keeps no state between calls): one fewer allocation per job.
    private static let decoder = JSONDecoder()

    static func decode<T: Decodable>(_ type: T.Type, from json: String) throws -> T {
        let data = Data(json.utf8)
        do {
            return try Self.decoder.decode(T.self, from: data)
        } catch let error as DecodingError {
            // Foundation on Linux reports a number that does not fit its field (1.5 or 1e19 for an Int) as "not
            // valid JSON", with no path: name the field from the arguments themselves.
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                for key in object.keys.sorted() {
                    // Booleans read as 0 or 1 here, whole numbers, so they never match.
                    guard let number = object[key] as? NSNumber else { continue }
                    let value = number.doubleValue
                    if value.rounded() != value || abs(value) >= 9.2e18 {
                        throw Self(field: key, message: "must be a whole number within range, not \(number)")
                    }
                }
                throw Self(field: "", message: "a number does not fit its field")
            }
            throw Self(error)
        }
    }

    init(_ error: DecodingError) {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            self.field = path(context.codingPath + [key])
            self.message = "is required"
        case .typeMismatch(let type, let context):
            self.field = path(context.codingPath)
            self.message = "must be \(Self.name(of: type))"
        case .valueNotFound(let type, let context):
            self.field = path(context.codingPath)
            self.message = "must be \(Self.name(of: type)), not null"
        case .dataCorrupted(let context):
            self.field = path(context.codingPath)
            self.message = context.codingPath.isEmpty ? "args must be a JSON object" : context.debugDescription
        @unknown default:
            self.field = ""
            self.message = "\(error)"
        }
    }

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is Int32.Type, is Int16.Type, is UInt.Type: return "a whole number"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        default: return "\(type)".contains("Dictionary") ? "an object" : "a \(type)"
        }
    }
}
