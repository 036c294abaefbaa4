import Foundation

/// A job enqueued on a schedule, declared by the program that runs a runner:
///
/// ```swift
/// let nightly = try PeriodicJob(name: "nightly-settlement", schedule: "0 2 * * *", kind: "settlement.nightly")
/// let runner = try JobRunner(postgres: postgres, config: config, handlers: handlers, periodicJobs: [nightly], logger: logger)
/// ```
///
/// The runner writes it to `skipper.schedules` when it starts (keeping a pause set there), and every runner makes its
/// ticks: exactly one job per tick, whatever the number of runners.
public struct PeriodicJob: Sendable, Equatable {
    /// What to do about ticks missed while no runner ran.
    public enum CatchUp: String, Sendable, Equatable {
        /// One job for the latest missed tick (the default).
        case latest
        /// None: wait for the next tick. A tick more than a minute late counts as missed.
        case none
    }

    /// The schedule's unique name: a letter or digit, then up to 127 of letters, digits, `.`, `_`, `:` and `-`.
    public let name: String
    public let schedule: CronSchedule
    public let kind: String
    /// The job's arguments, a JSON object.
    public let args: String
    public let queue: String
    public let priority: Int16
    public let maxAttempts: Int32
    public let timeout: Duration?
    public let catchUp: CatchUp

    /// A periodic job; `schedule` is a 5-field cron expression, `@every 30s`, or `@hourly`, `@daily`, `@weekly`,
    /// `@monthly`, `@yearly`, read in `timeZone`. Throws ``CronSchedule/ParseError`` or ``ConfigError`` naming the field.
    public init(
        name: String, schedule: String, timeZone: String = "UTC", kind: String, args: String = "{}", queue: String = "default",
        priority: Int16 = 0, maxAttempts: Int32 = 25, timeout: Duration? = nil, catchUp: CatchUp = .latest
    ) throws {
        guard Self.isValidName(name) else {
            throw ConfigError(name: "name", message: "must be a letter or digit, then up to 127 of letters, digits, '.', '_', ':' and '-', not '\(name)'")
        }
        guard (1...128).contains(kind.count) else { throw ConfigError(name: "kind", message: "must be 1 to 128 characters") }
        guard (1...128).contains(queue.count) else { throw ConfigError(name: "queue", message: "must be 1 to 128 characters") }
        guard maxAttempts > 0 else { throw ConfigError(name: "maxAttempts", message: "must be at least 1") }
        guard (try? JSONSerialization.jsonObject(with: Data(args.utf8))) is [String: Any] else {
            throw ConfigError(name: "args", message: "must be a JSON object")
        }
        self.name = name
        self.schedule = try CronSchedule(schedule, timeZone: timeZone)
        guard self.schedule.next(after: Date()) != nil else {
            throw CronSchedule.ParseError(field: "cron", message: "\"\(schedule)\" never happens (no tick within 8 years)")
        }
        self.kind = kind
        self.args = args
        self.queue = queue
        self.priority = priority
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.catchUp = catchUp
    }

    /// A schedule's name as `skipper.schedules` accepts it.
    public static func isValidName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard (1...128).contains(scalars.count), scalars.allSatisfy(\.isASCII) else { return false }
        func letterOrDigit(_ s: Unicode.Scalar) -> Bool { CharacterSet.alphanumerics.contains(s) }
        return letterOrDigit(scalars[0]) && scalars.dropFirst().allSatisfy { letterOrDigit($0) || ".:_-".unicodeScalars.contains($0) }
    }

    /// The tick to make when the schedule's next tick, `due`, has come at `now`: with `.latest` the latest tick up to
    /// now (one job for all the missed ones), with `.none` the due tick unless it is more than a minute late.
    func tick(due: Date, now: Date) -> Date? {
        Self.tick(self.schedule, catchUp: self.catchUp, due: due, now: now)
    }

    static func tick(_ schedule: CronSchedule, catchUp: CatchUp, due: Date, now: Date) -> Date? {
        switch catchUp {
        case .latest:
            return schedule.latest(after: due.addingTimeInterval(-0.001), upTo: max(now, due)) ?? due
        case .none:
            return now.timeIntervalSince(due) <= 60 ? due : nil
        }
    }
}
