import Foundation

/// When a periodic job runs: a 5-field cron expression, `@every <duration>`, or a shorthand, in a time zone.
///
/// Parsed once, at construction, so a bad schedule is an error where it is declared rather than a job that silently
/// never runs. Every computation is pure (no clock, no shared state): two runners given the same schedule and the
/// same instant agree on the tick, which is what lets every runner's scheduler agree on a schedule's ticks.
///
/// Daylight saving (close to cronie's handling: no nightly job is lost, no hourly job loses an hour):
/// - A wall time skipped by a spring-forward ticks once, at the first instant after the gap: "30 2 * * *" in
///   Europe/Berlin ticks at 03:00 CEST on 2026-03-29. Several skipped times collapse into that one tick, shared with a
///   regular tick at the same instant ("*/15 2 * * *" ticks once at 03:00 that day).
/// - A wall time repeated by a fall-back ticks once, at its first occurrence, when the hour field is restricted
///   ("30 1 * * *"); when it starts with `*` ("0 * * * *", "*/15 * * * *") it ticks at both, so an hourly job keeps
///   its pace.
/// - `latest(after:upTo:)` picks from the same ticks as `next(after:)`; `@every` has no wall time and is unaffected.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The expression as given (trimmed), e.g. "0 2 * * *", "@every 30s", "@daily".
    public let expression: String
    /// The IANA time zone the expression is read in, e.g. "Europe/Berlin" (default "UTC").
    public let timeZone: String
    /// What the expression means, derived from `expression` alone.
    let rule: Rule
    /// `timeZone`, resolved once.
    let zone: TimeZone

    /// The two kinds of schedule: wall-clock fields, or a fixed interval on the epoch grid.
    enum Rule: Sendable, Hashable {
        case cron(Fields)
        case every(seconds: Int)
    }

    /// Longer inputs are rejected before parsing: a schedule is written by a person, never generated at this size.
    static let maximumLength = 200
    /// How far `next` and `latest` search: a leap day can be 8 years away (2096-02-29 → 2104-02-29).
    static let searchDays = 8 * 366 + 1
    static let shorthands: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    /// Parses `expression` and resolves `timeZone`; throws a ``ParseError`` naming the offending part, so a bad
    /// schedule fails at startup instead of never firing.
    public init(_ expression: String, timeZone: String = "UTC") throws(CronSchedule.ParseError) {
        let text = expression.trimmingCharacters(in: .whitespacesAndNewlines)
        let zoneName = timeZone.trimmingCharacters(in: .whitespacesAndNewlines)
        self.rule = try Self.parse(text)
        guard !zoneName.isEmpty, let zone = TimeZone(identifier: zoneName) else {
            throw ParseError(
                field: "timezone",
                message: "unknown time zone \"\(zoneName)\"; expected an IANA name such as \"Europe/Berlin\" or \"UTC\""
            )
        }
        self.expression = text
        self.timeZone = zoneName
        self.zone = zone
    }

    /// The first tick strictly after `date`, or nil if there is none (e.g. "0 0 30 2 *" never matches).
    ///
    /// Cron schedules are searched day by day over at most 8 years, then hour and minute within a matching day, so
    /// even a leap-day schedule costs a few thousand arithmetic steps, never a minute-by-minute walk.
    public func next(after date: Date) -> Date? {
        let t = date.timeIntervalSince1970
        guard t.isFinite, abs(t) < 1e13 else { return nil }
        switch self.rule {
        case .every(let seconds):
            let interval = Double(seconds)
            return Date(timeIntervalSince1970: ((t / interval).rounded(.down) + 1) * interval)
        case .cron(let fields):
            return WallClock(zone: self.zone).next(fields, after: t).map { Date(timeIntervalSince1970: Double($0)) }
        }
    }

    /// The latest tick in (`after`, `upTo`], or nil if none. Used for catch-up after an outage: computed by walking
    /// back from `upTo` day by day, so a year of `* * * * *` costs one day's search, not a million ticks.
    public func latest(after: Date, upTo: Date) -> Date? {
        let low = after.timeIntervalSince1970
        let high = upTo.timeIntervalSince1970
        guard low.isFinite, high.isFinite, abs(low) < 1e13, abs(high) < 1e13, low < high else { return nil }
        switch self.rule {
        case .every(let seconds):
            let interval = Double(seconds)
            let tick = (high / interval).rounded(.down) * interval
            return tick > low ? Date(timeIntervalSince1970: tick) : nil
        case .cron(let fields):
            return WallClock(zone: self.zone).latest(fields, after: low, upTo: high)
                .map { Date(timeIntervalSince1970: Double($0)) }
        }
    }

    /// The expression and its zone, e.g. "0 2 * * * (Europe/Berlin)", for logs and error messages.
    public var description: String { "\(self.expression) (\(self.timeZone))" }

    /// An expression or time zone that cannot be used, naming the part that is wrong.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        /// "cron" or "timezone": which input field is wrong.
        public let field: String
        /// One sentence naming the offending part, e.g. `minute 61 is out of range 0-59 in "61 * * * *"`.
        public let message: String
        /// The message alone: it already names the part that is wrong.
        public var description: String { self.message }

        static func cron(_ message: String) -> Self { Self(field: "cron", message: message) }
    }
}

// MARK: - Parsing

extension CronSchedule {
    static func parse(_ text: String) throws(ParseError) -> Rule {
        guard !text.isEmpty else { throw .cron("the cron expression is empty") }
        guard text.count <= Self.maximumLength else {
            throw .cron("the expression is \(text.count) characters long; at most \(Self.maximumLength) are allowed")
        }
        let tokens = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard text.hasPrefix("@") else { return .cron(try Fields(tokens, expression: text)) }
        let name = tokens[0].lowercased()  // safe: `text` is non-empty and trimmed, so it has a first token
        if name == "@every" { return .every(seconds: try Self.parseEvery(tokens, expression: text)) }
        guard let fields = Self.shorthands[name] else {
            throw .cron(
                "unknown shorthand \"\(tokens[0])\"; expected @yearly, @annually, @monthly, @weekly, @daily, "
                    + "@midnight, @hourly or @every <duration>"
            )
        }
        guard tokens.count == 1 else { throw .cron("\(tokens[0]) takes nothing after it, in \"\(text)\"") }
        return .cron(try Fields(fields.split(separator: " ").map(String.init), expression: text))
    }

    /// `@every 1m30s`: number+unit groups (s, m, h, d) adding up to 1 second … 366 days.
    static func parseEvery(_ tokens: [String], expression: String) throws(ParseError) -> Int {
        guard tokens.count == 2 else {
            if tokens.count == 1 { throw .cron("@every needs a duration such as 30s, 1m30s, 2h or 1d, in \"\(expression)\"") }
            throw .cron("@every takes one duration without spaces (such as 1m30s), in \"\(expression)\"")
        }
        let duration = tokens[1]
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var total = 0
        var digits = ""
        for character in duration.lowercased() {
            if character.isASCII, character.isNumber {
                digits.append(character)
                // Nine digits of days is far beyond the limit yet cannot overflow the sum below.
                guard digits.count <= 9 else { throw .cron("@every duration \"\(duration)\" is longer than 366 days") }
            } else if let unit = units[character], let amount = Int(digits) {
                total += amount * unit
                digits = ""
            } else if units[character] != nil {
                throw .cron("@every duration \"\(duration)\" has a unit \"\(character)\" without a number before it")
            } else {
                throw .cron(
                    "@every duration \"\(duration)\" has \"\(character)\"; expected number+unit groups (s, m, h, d) "
                        + "such as 30s, 1m30s, 2h or 1d"
                )
            }
        }
        guard digits.isEmpty else {
            throw .cron("@every duration \"\(duration)\" needs a unit (s, m, h or d) after \(digits)")
        }
        guard total >= 1 else { throw .cron("@every duration \"\(duration)\" must be at least 1s") }
        guard total <= 366 * 86_400 else { throw .cron("@every duration \"\(duration)\" is longer than 366 days") }
        return total
    }
}

extension CronSchedule {
    /// The five cron fields as sets of allowed values, with Vixie's day rule.
    struct Fields: Sendable, Hashable {
        /// Allowed minutes and hours, ascending, for iterating within a day.
        let minutes: [Int]
        let hours: [Int]
        /// Bit n set: n is allowed (days of month 1-31, months 1-12, days of week 0-6 with 0 = Sunday).
        let daysOfMonth: UInt64
        let months: UInt64
        let daysOfWeek: UInt64
        /// Vixie's rule: a day field starting with `*` (also `*/2`) does not restrict, and the days are then ANDed;
        /// when both are restricted a day matches if either field matches.
        let dayOfMonthIsStar: Bool
        let dayOfWeekIsStar: Bool
        /// The hour field starts with `*` (also `*/2`): a wall time repeated by a fall-back then ticks at each
        /// occurrence, so "0 * * * *" keeps its pace; a restricted hour ticks at the first occurrence only.
        let hourIsStar: Bool

        init(_ tokens: [String], expression: String) throws(ParseError) {
            guard tokens.count == 5 else {
                throw .cron(
                    "expected 5 fields (minute hour day-of-month month day-of-week) but found \(tokens.count) "
                        + "in \"\(expression)\""
                )
            }
            let specs = [FieldSpec.minute, .hour, .dayOfMonth, .month, .dayOfWeek]
            var masks: [UInt64] = []
            for (token, spec) in zip(tokens, specs) { masks.append(try spec.parse(token, expression: expression)) }
            self.minutes = (0...59).filter { masks[0] & (1 << $0) != 0 }
            self.hours = (0...23).filter { masks[1] & (1 << $0) != 0 }
            self.daysOfMonth = masks[2]
            self.months = masks[3]
            self.daysOfWeek = masks[4] & (1 << 7) != 0 ? (masks[4] & ~(1 << 7)) | 1 : masks[4]  // 7 is Sunday, as 0
            self.dayOfMonthIsStar = tokens[2].hasPrefix("*")
            self.dayOfWeekIsStar = tokens[4].hasPrefix("*")
            self.hourIsStar = tokens[1].hasPrefix("*")
        }

        func matches(month: Int, day: Int, weekday: Int) -> Bool {
            guard self.months & (1 << month) != 0 else { return false }
            let dayOK = self.daysOfMonth & (1 << day) != 0
            let weekdayOK = self.daysOfWeek & (1 << weekday) != 0
            return self.dayOfMonthIsStar || self.dayOfWeekIsStar ? dayOK && weekdayOK : dayOK || weekdayOK
        }
    }

    /// One field's name, bounds and value names.
    struct FieldSpec {
        let name: String
        /// Values a number may take (day of week allows 7 for Sunday).
        let bounds: ClosedRange<Int>
        /// What `*` and the end of `a/n` mean (day of week: 0-6, each day once).
        let star: ClosedRange<Int>
        /// Three-letter names, the first meaning `star.lowerBound`.
        let names: [String]

        static let minute = FieldSpec(name: "minute", bounds: 0...59, star: 0...59, names: [])
        static let hour = FieldSpec(name: "hour", bounds: 0...23, star: 0...23, names: [])
        static let dayOfMonth = FieldSpec(name: "day of month", bounds: 1...31, star: 1...31, names: [])
        static let month = FieldSpec(
            name: "month",
            bounds: 1...12,
            star: 1...12,
            names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        )
        static let dayOfWeek = FieldSpec(
            name: "day of week",
            bounds: 0...7,
            star: 0...6,
            names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        )

        /// A comma-separated list, as a bit mask of allowed values.
        func parse(_ text: String, expression: String) throws(ParseError) -> UInt64 {
            var mask: UInt64 = 0
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard !item.isEmpty else { throw .cron("\(self.name) \"\(text)\" has an empty list item in \"\(expression)\"") }
                mask |= try self.parseItem(String(item), expression: expression)
            }
            return mask
        }

        /// `*`, `a`, `a-b`, each optionally with `/n`.
        private func parseItem(_ item: String, expression: String) throws(ParseError) -> UInt64 {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2 else { throw self.garbage(item, expression) }
            guard parts.allSatisfy({ !$0.isEmpty }) else {
                throw .cron("\(self.name) \"\(item)\" has an empty part in \"\(expression)\"")
            }
            let range = try self.parseRange(parts[0], stepped: parts.count == 2, expression: expression)
            let step = parts.count == 2 ? try self.parseStep(parts[1], item: item, range: range, expression: expression) : 1
            var mask: UInt64 = 0
            for value in stride(from: range.lowerBound, through: range.upperBound, by: step) { mask |= 1 << value }
            return mask
        }

        private func parseRange(_ text: String, stepped: Bool, expression: String) throws(ParseError) -> ClosedRange<Int> {
            if text == "*" { return self.star }
            let ends = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard ends.count <= 2, ends.allSatisfy({ !$0.isEmpty }) else { throw self.garbage(text, expression) }
            let low = try self.value(ends[0], expression: expression)
            guard ends.count == 2 else { return stepped ? low...max(low, self.star.upperBound) : low...low }
            let high = try self.value(ends[1], expression: expression)
            guard low <= high else {
                throw .cron("\(self.name) range \(text) is reversed (\(low) > \(high)) in \"\(expression)\"")
            }
            return low...high
        }

        private func parseStep(_ text: String, item: String, range: ClosedRange<Int>, expression: String) throws(ParseError) -> Int {
            guard text.allSatisfy({ $0.isASCII && $0.isNumber }), let step = Int(text) else {
                throw .cron("\(self.name) step \"\(text)\" in \"\(item)\" is not a number in \"\(expression)\"")
            }
            guard step >= 1 else { throw .cron("\(self.name) step 0 in \"\(item)\" must be at least 1 in \"\(expression)\"") }
            guard step == 1 || step <= range.upperBound - range.lowerBound else {
                throw .cron(
                    "\(self.name) step \(step) in \"\(item)\" is larger than the range "
                        + "\(range.lowerBound)-\(range.upperBound) in \"\(expression)\""
                )
            }
            return step
        }

        private func value(_ text: String, expression: String) throws(ParseError) -> Int {
            if text.allSatisfy({ $0.isASCII && $0.isNumber }) {
                guard let number = Int(text), self.bounds.contains(number) else {
                    throw .cron(
                        "\(self.name) \(text) is out of range \(self.bounds.lowerBound)-\(self.bounds.upperBound) "
                            + "in \"\(expression)\""
                    )
                }
                return number
            }
            if let index = self.names.firstIndex(of: text.lowercased()) { return self.star.lowerBound + index }
            if self.names.isEmpty {
                throw .cron(
                    "\(self.name) \"\(text)\" is not a number (names are allowed only in month and day of week) "
                        + "in \"\(expression)\""
                )
            }
            let examples = "\(self.names[0])-\(self.names[self.names.count - 1])"  // names is non-empty here
            throw .cron("\(self.name) \"\(text)\" is not a number or a name (\(examples)) in \"\(expression)\"")
        }

        private func garbage(_ text: String, _ expression: String) -> ParseError {
            .cron("\(self.name) \"\(text)\" is not a number, range a-b or step a/n in \"\(expression)\"")
        }
    }
}

// MARK: - Searching

extension CronSchedule {
    /// Wall-clock arithmetic in one zone, in whole seconds since the epoch. Dates are proleptic Gregorian computed by
    /// hand (days ⇄ year/month/day), and the zone is consulted only through `secondsFromGMT(for:)`, which behaves the
    /// same on Darwin and swift-corelibs-foundation; `Calendar.date(from:)` silently shifts times in a DST gap.
    ///
    /// The ticks are one set, built per local day (see ``ticks(_:day:)``): `next` is its least member after an
    /// instant and `latest` its greatest in a range, so the two always agree. Every tick of local day D lies strictly
    /// between the instants (D - 1) and (D + 2) days, as no offset reaches a day; that bounds both searches.
    struct WallClock {
        let zone: TimeZone

        /// One offset in force from `start` (inclusive) to the next segment's start.
        struct Segment {
            let start: Int
            let offset: Int
        }

        func next(_ fields: Fields, after t: Double) -> Int? {
            let first = Self.days(Int(t.rounded(.down))) - 2
            var best: Int?
            for day in first..<(first + CronSchedule.searchDays + 4) {
                // Ticks of this day and later ones are all after (day - 1) days: none can beat `best`.
                if let best, best <= (day - 1) * 86_400 { break }
                guard self.matches(fields, day: day) else { continue }
                for tick in self.ticks(fields, day: day) where Double(tick) > t && tick < (best ?? .max) { best = tick }
            }
            return best
        }

        func latest(_ fields: Fields, after low: Double, upTo high: Double) -> Int? {
            let last = Self.days(Int(high.rounded(.down))) + 1
            let first = max(Self.days(Int(low.rounded(.down))) - 2, last - CronSchedule.searchDays - 4)
            var best: Int?
            for day in stride(from: last, through: first, by: -1) {
                // Ticks of this day and earlier ones are all before (day + 2) days: none can beat `best`.
                if let best, best >= (day + 2) * 86_400 { break }
                guard self.matches(fields, day: day) else { continue }
                for tick in self.ticks(fields, day: day) where Double(tick) > low && Double(tick) <= high {
                    if tick > (best ?? .min) { best = tick }
                }
            }
            return best
        }

        /// The ticks of every allowed time on local day `day`, unordered and possibly repeated: a wall time that
        /// happens once ticks then; one skipped by a spring-forward ticks at the first instant after the gap; one that
        /// happens twice ticks at its first occurrence, or at each when the hour field is unrestricted.
        func ticks(_ fields: Fields, day: Int) -> [Int] {
            let segments = self.segments(around: day)
            var ticks: [Int] = []
            ticks.reserveCapacity(fields.hours.count * fields.minutes.count)
            for hour in fields.hours {
                for minute in fields.minutes {
                    let wall = day * 86_400 + hour * 3600 + minute * 60
                    Self.instants(of: wall, in: segments, all: fields.hourIsStar, into: &ticks)
                }
            }
            return ticks
        }

        /// Appends the instants wall time `wall` ticks at, given the offsets around it: its first occurrence (every
        /// occurrence when `all`), or, when no offset maps it to an instant, the change that jumped over it.
        static func instants(of wall: Int, in segments: [Segment], all: Bool, into ticks: inout [Int]) {
            var found = false
            for (index, segment) in segments.enumerated() {
                let instant = wall - segment.offset
                let end = index + 1 < segments.count ? segments[index + 1].start : .max
                guard instant >= segment.start, instant < end else { continue }
                ticks.append(instant)  // segments are in time order: the first found is the first occurrence
                guard all else { return }
                found = true
            }
            guard !found else { return }
            for index in segments.indices.dropFirst() {
                let before = segments[index - 1].offset
                let change = segments[index]
                if change.start + before <= wall, wall < change.start + change.offset {
                    ticks.append(change.start)
                    return
                }
            }
        }

        /// The offsets in force over (day - 1) … (day + 2) days, which hold every instant a wall time on `day` can
        /// map to. The zone is probed every 3 hours and each change found is pinned to the second by bisection, so a
        /// change undone within 3 hours would be missed; no zone's history has one.
        func segments(around day: Int) -> [Segment] {
            let from = (day - 1) * 86_400
            var segments = [Segment(start: .min, offset: self.offset(at: from))]
            var known = from  // an instant with the last segment's offset
            for probe in stride(from: from + 10_800, through: (day + 2) * 86_400, by: 10_800) {
                let offset = self.offset(at: probe)
                while let current = segments.last?.offset, current != offset {
                    var low = known  // offset `current`
                    var high = probe  // a later offset
                    while high - low > 1 {
                        let middle = low + (high - low) / 2
                        if self.offset(at: middle) == current { low = middle } else { high = middle }
                    }
                    segments.append(Segment(start: high, offset: self.offset(at: high)))
                    known = high
                }
                known = probe
            }
            return segments
        }

        private func matches(_ fields: Fields, day: Int) -> Bool {
            let (_, month, dayOfMonth) = Self.civil(fromDays: day)
            let weekday = ((day % 7) + 11) % 7  // day 0, 1970-01-01, was a Thursday (4)
            return fields.matches(month: month, day: dayOfMonth, weekday: weekday)
        }

        /// The day number of `seconds`, rounding down.
        private static func days(_ seconds: Int) -> Int {
            seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        }

        private func offset(at seconds: Int) -> Int {
            self.zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds)))
        }

        /// Year, month, day of a day number (Howard Hinnant's `civil_from_days`).
        static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
            let z = days + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let dayOfEra = z - era * 146_097
            let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
            let shifted = (5 * dayOfYear + 2) / 153
            let day = dayOfYear - (153 * shifted + 2) / 5 + 1
            let month = shifted < 10 ? shifted + 3 : shifted - 9
            return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
        }
    }
}
