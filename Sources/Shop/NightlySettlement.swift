import Foundation
import Skipper

/// `settlement.nightly {"day"?: "2025-01-31"}`: the settlement of the UTC day before the tick the job was made for
/// (its `meta.scheduled_for`, which the scheduler sets; the day before today without one), together with the days
/// missed since the last settled day, at most 30 more: after an outage the schedule makes one catch-up job for its
/// latest tick, and that job settles every night that was missed. With `day`, that day alone. The shop's runner
/// declares it as the periodic job `shop.nightly-settlement`, at 02:00 UTC.
public struct NightlySettlement: JobHandler {
    public struct Args: Codable, Sendable {
        public var day: String?
    }

    public static let kind = "settlement.nightly"
    /// The periodic job's name in `skipper.schedules`.
    public static let scheduleName = "shop.nightly-settlement"

    let settlement: Settlement

    public init(defaultBatchSize: Int = 10_000) {
        self.settlement = Settlement(defaultBatchSize: defaultBatchSize)
    }

    public func check(_ args: Args) throws {
        if let day = args.day { _ = try Settlement.validate(Settlement.Args(from: day, to: day)) }
    }

    public func run(_ args: Args, context: JobContext) async throws -> Settlement.Output? {
        if let day = args.day {
            return try await self.settlement.run(Settlement.Args(from: day, to: day), context: context)
        }
        let to = Self.dayBefore(Self.scheduledFor(context.meta) ?? Date())
        // The day after the last settled one, if that is earlier (nights missed while nothing ran), within 30 days.
        let from = try await context.withConnection { connection -> String in
            let rows = try await connection.query(
                """
                SELECT greatest(least(max(date) + 1, \(to)::date), \(to)::date - 30)::text FROM settlements WHERE date <= \(to)::date
                """,
                logger: context.logger)
            for try await day in rows.decode(String?.self) { return day ?? to }
            return to
        }
        context.logger.info("settling", metadata: ["from": "\(from)", "to": "\(to)"])
        return try await self.settlement.run(Settlement.Args(from: from, to: to), context: context)
    }

    /// The periodic job skipper-runner declares: `cron` (UTC) makes one nightly settlement per tick.
    public static func periodicJob(cron: String = "0 2 * * *") throws -> PeriodicJob {
        try PeriodicJob(name: Self.scheduleName, schedule: cron, kind: Self.kind, maxAttempts: 5)
    }

    static func scheduledFor(_ meta: String) -> Date? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(meta.utf8)) as? [String: Any],
            let text = object["scheduled_for"] as? String
        else { return nil }
        return try? Date(text, strategy: .iso8601)
    }

    /// The UTC date (YYYY-MM-DD) of the day before `date`.
    static func dayBefore(_ date: Date) -> String {
        Settlement.dayString(date.addingTimeInterval(-86_400))
    }
}
