import Foundation

/// Kinds every runner has, for tests, benchmarks and smoke checks.
public enum BuiltIn {
    /// `noop`, `sleep`, `fail`.
    public static let handlers: [AnyJobHandler] = [AnyJobHandler(Noop()), AnyJobHandler(Sleep()), AnyJobHandler(Fail())]

    /// `noop`: does nothing and completes.
    public struct Noop: JobHandler {
        public struct Args: Codable, Sendable {}
        public static let kind = "noop"
        public init() {}
        public func run(_ args: Args, context: JobContext) async throws -> NoOutput? { nil }
    }

    /// `sleep {"ms": N}`: sleeps N milliseconds, reporting progress every 100 ms; cancellable.
    public struct Sleep: JobHandler {
        public struct Args: Codable, Sendable {
            public var ms: Int
        }
        public struct Output: Codable, Sendable {
            public var slept_ms: Int
        }
        public static let kind = "sleep"
        public init() {}

        public func check(_ args: Args) throws {
            guard (0...86_400_000).contains(args.ms) else { throw ArgumentsError(field: "ms", message: "must be between 0 and 86400000") }
        }

        public func run(_ args: Args, context: JobContext) async throws -> Output? {
            let total = Int64(args.ms)
            context.progress(processed: 0, total: total)
            var slept: Int64 = 0
            while slept < total {
                let step = min(100, total - slept)
                try await Task.sleep(for: .milliseconds(step))
                slept += step
                context.progress(processed: slept)
            }
            return Output(slept_ms: args.ms)
        }
    }

    /// `fail {"message": "...", "times": N, "retry_ms": M}`: fails its first N attempts (all when N is absent),
    /// retrying after M ms (default: the standard backoff).
    public struct Fail: JobHandler {
        public struct Args: Codable, Sendable {
            public var message: String?
            public var times: Int?
            public var retry_ms: Int?
        }
        public static let kind = "fail"
        public init() {}

        public func check(_ args: Args) throws {
            if let times = args.times, !(0...1000).contains(times) {
                throw ArgumentsError(field: "times", message: "must be between 0 and 1000")
            }
            if let ms = args.retry_ms, !(0...JobError.maxRetryDelayMilliseconds).contains(Int64(ms)) {
                throw ArgumentsError(field: "retry_ms", message: "must be between 0 and \(JobError.maxRetryDelayMilliseconds) (30 days)")
            }
            if let message = args.message, message.unicodeScalars.count > 10_000 {
                throw ArgumentsError(field: "message", message: "must be at most 10000 characters")
            }
        }

        public func run(_ args: Args, context: JobContext) async throws -> NoOutput? {
            let message = args.message ?? "failed on purpose"
            guard let times = args.times else { throw FailedOnPurpose(message: message) }
            if context.attempt <= times {
                if let ms = args.retry_ms { throw JobError.retry(after: .milliseconds(ms), message: message) }
                throw FailedOnPurpose(message: message)
            }
            return nil
        }
    }

    struct FailedOnPurpose: Error, CustomStringConvertible {
        let message: String
        var description: String { self.message }
    }
}
