import Foundation
import Testing

@testable import Skipper

/// Every expected tick is an exact instant written as an ISO 8601 string with its offset, so a DST case reads as the
/// wall time a person would check on a clock.
@Suite struct CronScheduleTests {
    // MARK: Field syntax

    @Test func eachFieldSyntax() throws {
        let cases: [(String, String, [String])] = [
            ("5 * * * *", "2026-01-01T10:07:00Z", ["2026-01-01T11:05:00Z", "2026-01-01T12:05:00Z"]),
            ("*/20 * * * *", "2026-01-01T10:07:00Z", ["2026-01-01T10:20:00Z", "2026-01-01T10:40:00Z", "2026-01-01T11:00:00Z"]),
            ("10-12 * * * *", "2026-01-01T10:11:00Z", ["2026-01-01T10:12:00Z", "2026-01-01T11:10:00Z"]),
            ("1,20-21,40 * * * *", "2026-01-01T10:05:00Z", ["2026-01-01T10:20:00Z", "2026-01-01T10:21:00Z", "2026-01-01T10:40:00Z"]),
            ("10-30/10 * * * *", "2026-01-01T10:25:00Z", ["2026-01-01T10:30:00Z", "2026-01-01T11:10:00Z"]),
            ("50/5 * * * *", "2026-01-01T10:52:00Z", ["2026-01-01T10:55:00Z", "2026-01-01T11:50:00Z"]),
            ("0 9-17/4 * * *", "2026-01-01T09:00:00Z", ["2026-01-01T13:00:00Z", "2026-01-01T17:00:00Z", "2026-01-02T09:00:00Z"]),
            ("0 0 15,31 * *", "2026-01-20T00:00:00Z", ["2026-01-31T00:00:00Z", "2026-02-15T00:00:00Z", "2026-03-15T00:00:00Z"]),
            ("0 0 1 3-4 *", "2026-01-01T00:00:00Z", ["2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", "2027-03-01T00:00:00Z"]),
            // 2026-01-02 is a Friday.
            ("0 0 * * 1-5", "2026-01-02T12:00:00Z", ["2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z"]),
        ]
        for (expression, after, expected) in cases {
            let schedule = try CronSchedule(expression)
            #expect(try self.ticks(schedule, after: after, count: expected.count) == expected.map(self.date), "\(expression)")
        }
    }

    /// The tick is strictly after the given instant, and cron ticks are on whole minutes.
    @Test func nextIsStrictlyAfter() throws {
        let hourly = try CronSchedule("0 * * * *")
        #expect(hourly.next(after: try self.date("2026-01-01T10:00:00Z")) == (try self.date("2026-01-01T11:00:00Z")))
        let justBefore = try self.date("2026-01-01T10:00:00Z").addingTimeInterval(-0.5)
        #expect(hourly.next(after: justBefore) == (try self.date("2026-01-01T10:00:00Z")))
        let everyMinute = try CronSchedule("* * * * *")
        #expect(everyMinute.next(after: try self.date("2026-01-01T10:00:42Z")) == (try self.date("2026-01-01T10:01:00Z")))
    }

    // MARK: Days

    /// Both day fields restricted: either matches. One of them `*`: only the other counts.
    @Test func vixieDayRule() throws {
        // 2026-03-06 and 2026-03-13 are Fridays; the 10th is a Tuesday.
        let either = try CronSchedule("0 0 10 * 5")
        #expect(
            try self.ticks(either, after: "2026-03-01T00:00:00Z", count: 3)
                == ["2026-03-06T00:00:00Z", "2026-03-10T00:00:00Z", "2026-03-13T00:00:00Z"].map(self.date)
        )
        let fridays = try CronSchedule("0 0 * * 5")
        #expect(
            try self.ticks(fridays, after: "2026-03-01T00:00:00Z", count: 2)
                == ["2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z"].map(self.date)
        )
        let tenth = try CronSchedule("0 0 10 * *")
        #expect(tenth.next(after: try self.date("2026-03-01T00:00:00Z")) == (try self.date("2026-03-10T00:00:00Z")))
        // As in Vixie cron, a field starting with `*` counts as `*`: days 1, 11, 21, 31 AND Friday; first 2026-05-01.
        let stepped = try CronSchedule("0 0 */10 * 5")
        #expect(stepped.next(after: try self.date("2026-01-01T00:00:00Z")) == (try self.date("2026-05-01T00:00:00Z")))
    }

    @Test func namesAreCaseInsensitiveAndSevenIsSunday() throws {
        let named = try CronSchedule("0 12 * JAN,mar-Apr mon-fri")
        #expect(
            try self.ticks(named, after: "2026-01-30T13:00:00Z", count: 2)
                == ["2026-03-02T12:00:00Z", "2026-03-03T12:00:00Z"].map(self.date)
        )
        // 2026-01-04 is a Sunday.
        for expression in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * SUN"] {
            #expect(
                try self.ticks(try CronSchedule(expression), after: "2026-01-01T00:00:00Z", count: 2)
                    == ["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"].map(self.date),
                "\(expression)"
            )
        }
        let weekend = try CronSchedule("0 0 * * 5-7")
        #expect(
            try self.ticks(weekend, after: "2026-01-01T00:00:00Z", count: 4)
                == ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z"]
                .map(self.date)
        )
    }

    @Test func leapDayIsYearsAway() throws {
        let leapDay = try CronSchedule("0 0 29 2 *")
        #expect(leapDay.next(after: try self.date("2025-03-01T00:00:00Z")) == (try self.date("2028-02-29T00:00:00Z")))
        // 2100 is not a leap year: the longest wait, eight years less a day.
        #expect(leapDay.next(after: try self.date("2096-03-01T00:00:00Z")) == (try self.date("2104-02-29T00:00:00Z")))
        #expect(
            leapDay.latest(after: try self.date("2020-01-01T00:00:00Z"), upTo: try self.date("2027-12-31T00:00:00Z"))
                == (try self.date("2024-02-29T00:00:00Z"))
        )
        let never = try CronSchedule("0 0 30 2 *")
        #expect(never.next(after: try self.date("2025-01-01T00:00:00Z")) == nil)
        #expect(never.latest(after: try self.date("2000-01-01T00:00:00Z"), upTo: try self.date("2030-01-01T00:00:00Z")) == nil)
    }

    // MARK: Shorthands and @every

    @Test func shorthandsMeanTheirExpansion() throws {
        let after = "2026-03-01T00:00:00Z"  // a Sunday
        let cases: [(String, String)] = [
            ("@yearly", "2027-01-01T00:00:00Z"), ("@annually", "2027-01-01T00:00:00Z"), ("@monthly", "2026-04-01T00:00:00Z"),
            ("@weekly", "2026-03-08T00:00:00Z"), ("@daily", "2026-03-02T00:00:00Z"), ("@midnight", "2026-03-02T00:00:00Z"),
            ("@hourly", "2026-03-01T01:00:00Z"), ("@DAILY", "2026-03-02T00:00:00Z"),
        ]
        for (shorthand, expected) in cases {
            #expect(try CronSchedule(shorthand).next(after: try self.date(after)) == (try self.date(expected)), "\(shorthand)")
        }
        let berlin = try CronSchedule("@daily", timeZone: "Europe/Berlin")
        #expect(berlin.next(after: try self.date(after)) == (try self.date("2026-03-01T23:00:00Z")))
        #expect(berlin.description == "@daily (Europe/Berlin)")
    }

    /// Ticks sit on multiples of the interval since the epoch, whatever instant a process asks from.
    @Test func everyIsOnTheEpochGrid() throws {
        let schedule = try CronSchedule("@every 90s")
        // 2026-01-01T00:00:00Z is 1_767_225_600 s, a multiple of 90.
        for after in ["2026-01-01T00:00:10Z", "2026-01-01T00:01:29Z", "2026-01-01T00:00:00Z"] {
            #expect(schedule.next(after: try self.date(after)) == (try self.date("2026-01-01T00:01:30Z")), "\(after)")
        }
        #expect(schedule.next(after: try self.date("2026-01-01T00:01:30Z")) == (try self.date("2026-01-01T00:03:00Z")))
        let other = try self.date("2026-05-17T13:14:15Z")
        let tick = try #require(schedule.next(after: other))
        #expect(tick.timeIntervalSince1970.truncatingRemainder(dividingBy: 90) == 0 && tick > other)
        #expect(tick.timeIntervalSince(other) <= 90)
        #expect(try CronSchedule("@every 1m30s").next(after: other) == tick)
        // The zone does not move the grid: a day is a UTC day.
        let daily = try CronSchedule("@every 1d", timeZone: "Asia/Tokyo")
        #expect(daily.next(after: other) == (try self.date("2026-05-18T00:00:00Z")))
        #expect(try CronSchedule("@every 2h").next(after: other) == (try self.date("2026-05-17T14:00:00Z")))
    }

    @Test func latestOfEvery() throws {
        let schedule = try CronSchedule("@every 90s")
        let found = schedule.latest(after: try self.date("2026-01-01T00:00:10Z"), upTo: try self.date("2026-01-01T00:05:00Z"))
        #expect(found == (try self.date("2026-01-01T00:04:30Z")))
        #expect(schedule.latest(after: try self.date("2026-01-01T00:01:31Z"), upTo: try self.date("2026-01-01T00:02:59Z")) == nil)
        // (after, upTo]: upTo itself counts, after does not.
        #expect(
            schedule.latest(after: try self.date("2026-01-01T00:01:30Z"), upTo: try self.date("2026-01-01T00:03:00Z"))
                == (try self.date("2026-01-01T00:03:00Z"))
        )
        #expect(schedule.latest(after: try self.date("2026-01-01T00:01:30Z"), upTo: try self.date("2026-01-01T00:02:00Z")) == nil)
    }

    // MARK: Time zones and DST

    @Test func fieldsAreReadInTheZone() throws {
        let berlin = try CronSchedule("0 9 * * *", timeZone: "Europe/Berlin")
        #expect(berlin.next(after: try self.date("2026-01-10T00:00:00Z")) == (try self.date("2026-01-10T09:00:00+01:00")))
        #expect(berlin.next(after: try self.date("2026-07-10T00:00:00Z")) == (try self.date("2026-07-10T09:00:00+02:00")))
        #expect(berlin.description == "0 9 * * * (Europe/Berlin)")
    }

    /// 2026-03-29 02:30 does not exist in Berlin (02:00 → 03:00); 2026-10-25 02:30 happens twice (03:00 → 02:00).
    @Test func berlinDST() throws {
        // A skipped time ticks once, at the first instant after the gap: 03:00 CEST.
        let schedule = try CronSchedule("30 2 * * *", timeZone: "Europe/Berlin")
        #expect(
            try self.ticks(schedule, after: "2026-03-28T12:00:00+01:00", count: 2)
                == ["2026-03-29T01:00:00Z", "2026-03-30T02:30:00+02:00"].map(self.date)
        )
        // A daily job never skips a day, and a yearly one does not wait a year for a date whose time never exists.
        let nightly = try CronSchedule("0 2 * * *", timeZone: "Europe/Berlin")
        #expect(
            try self.ticks(nightly, after: "2027-03-27T12:00:00Z", count: 2)
                == ["2027-03-28T01:00:00Z", "2027-03-29T02:00:00+02:00"].map(self.date)
        )
        let yearly = try CronSchedule("30 2 28 3 *", timeZone: "Europe/Berlin")
        #expect(yearly.next(after: try self.date("2027-01-01T00:00:00Z")) == (try self.date("2027-03-28T01:00:00Z")))
        // Several skipped times collapse into one tick, then the schedule carries on.
        let quarterly = try CronSchedule("*/15 2 * * *", timeZone: "Europe/Berlin")
        #expect(
            try self.ticks(quarterly, after: "2026-03-29T00:00:00+01:00", count: 3)
                == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T02:15:00+02:00"].map(self.date)
        )
        // The regular 03:00 tick and the skipped 02:00 are the same tick.
        let hourly = try CronSchedule("0 * * * *", timeZone: "Europe/Berlin")
        #expect(
            try self.ticks(hourly, after: "2026-03-29T00:30:00+01:00", count: 3)
                == ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"].map(self.date)
        )
        // A restricted hour ticks at the first 02:30 only.
        #expect(
            try self.ticks(schedule, after: "2026-10-24T12:00:00+02:00", count: 2)
                == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"].map(self.date)
        )
        // `latest` agrees: the moved tick across the gap, and not the second 02:30 (01:30Z) across the fall-back.
        #expect(
            schedule.latest(after: try self.date("2026-03-28T12:00:00Z"), upTo: try self.date("2026-03-29T12:00:00Z"))
                == (try self.date("2026-03-29T01:00:00Z"))
        )
        #expect(schedule.latest(after: try self.date("2026-03-29T01:00:00Z"), upTo: try self.date("2026-03-30T00:00:00Z")) == nil)
        let between = schedule.latest(after: try self.date("2026-10-25T02:30:00+02:00"), upTo: try self.date("2026-10-25T02:45:00+01:00"))
        #expect(between == nil)
        // An unrestricted hour ticks at both 02:00s.
        #expect(
            try self.ticks(hourly, after: "2026-10-24T23:30:00Z", count: 3)
                == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"].map(self.date)
        )
        #expect(
            hourly.latest(after: try self.date("2026-10-25T00:30:00Z"), upTo: try self.date("2026-10-25T01:30:00Z"))
                == (try self.date("2026-10-25T02:00:00+01:00"))
        )
    }

    /// New York: 2026-03-08 02:00 → 03:00, and 2026-11-01 02:00 → 01:00.
    @Test func newYorkDST() throws {
        let gap = try CronSchedule("30 2 * * *", timeZone: "America/New_York")
        #expect(
            try self.ticks(gap, after: "2026-03-07T12:00:00-05:00", count: 2)
                == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"].map(self.date)
        )
        #expect(
            gap.latest(after: try self.date("2026-03-08T06:00:00Z"), upTo: try self.date("2026-03-08T12:00:00Z"))
                == (try self.date("2026-03-08T07:00:00Z"))
        )
        // A restricted hour: the repeated 01:30 ticks once, at its first occurrence.
        let repeated = try CronSchedule("30 1 * * *", timeZone: "America/New_York")
        #expect(
            try self.ticks(repeated, after: "2026-10-31T12:00:00-04:00", count: 2)
                == ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"].map(self.date)
        )
        #expect(repeated.latest(after: try self.date("2026-11-01T05:30:00Z"), upTo: try self.date("2026-11-01T12:00:00Z")) == nil)
        // An unrestricted hour ticks in both passes of the repeated hour: no two-hour gap.
        let hourly = try CronSchedule("0 * * * *", timeZone: "America/New_York")
        #expect(
            try self.ticks(hourly, after: "2026-11-01T04:30:00Z", count: 3)
                == ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"].map(self.date)
        )
        #expect(
            hourly.latest(after: try self.date("2026-11-01T05:00:00Z"), upTo: try self.date("2026-11-01T06:59:59Z"))
                == (try self.date("2026-11-01T06:00:00Z"))
        )
        let halfHourly = try CronSchedule("*/30 * * * *", timeZone: "America/New_York")
        #expect(
            try self.ticks(halfHourly, after: "2026-11-01T01:00:00-04:00", count: 4)
                == ["2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"]
                .map(self.date)
        )
    }

    // MARK: Catch-up

    /// A year's outage of an every-minute job: the last minute, without stepping through half a million ticks.
    @Test func latestOfAYearIsTheLastMinuteAndFast() throws {
        let clock = ContinuousClock()
        let start = clock.now
        for zone in ["UTC", "Europe/Berlin"] {
            let schedule = try CronSchedule("* * * * *", timeZone: zone)
            let found = schedule.latest(after: try self.date("2025-01-01T00:00:00Z"), upTo: try self.date("2026-01-01T00:00:30Z"))
            #expect(found == (try self.date("2026-01-01T00:00:00Z")), "\(zone)")
        }
        let nightly = try CronSchedule("0 2 * * *")
        let missed = nightly.latest(after: try self.date("2020-01-01T00:00:00Z"), upTo: try self.date("2026-06-15T01:00:00Z"))
        #expect(missed == (try self.date("2026-06-14T02:00:00Z")))
        #expect(clock.now - start < .seconds(1), "a minute-by-minute walk over the year takes several seconds")
        let minute = try CronSchedule("* * * * *")
        #expect(minute.latest(after: try self.date("2026-01-01T00:00:00Z"), upTo: try self.date("2026-01-01T00:00:59Z")) == nil)
        #expect(minute.latest(after: try self.date("2026-01-01T00:01:00Z"), upTo: try self.date("2026-01-01T00:00:00Z")) == nil)
    }

    // MARK: Parsing

    @Test func whitespaceIsTrimmedAndSchedulesCompareByInput() throws {
        let spaced = try CronSchedule("  0\t2   * * *\n", timeZone: " Europe/Berlin ")
        #expect(spaced.expression == "0\t2   * * *" && spaced.timeZone == "Europe/Berlin")
        #expect(spaced.next(after: try self.date("2026-01-10T00:00:00Z")) == (try self.date("2026-01-10T02:00:00+01:00")))
        #expect(try CronSchedule("0 2 * * *", timeZone: "Europe/Berlin").description == "0 2 * * * (Europe/Berlin)")
        #expect(try CronSchedule("0 2 * * *") == CronSchedule(" 0 2 * * * "))
        #expect(try CronSchedule("0 2 * * *") != CronSchedule("0 2 * * *", timeZone: "Europe/Berlin"))
        #expect(try Set([CronSchedule("@daily"), CronSchedule("@daily")]).count == 1)
    }

    @Test func badInputsNameTheirPart() throws {
        let cases: [(expression: String, timeZone: String, field: String, names: String)] = [
            ("", "UTC", "cron", "empty"),
            ("* * * *", "UTC", "cron", "found 4"),
            ("0 * * * * *", "UTC", "cron", "found 6"),
            ("61 * * * *", "UTC", "cron", "minute 61 is out of range 0-59"),
            ("* 24 * * *", "UTC", "cron", "hour 24 is out of range 0-23"),
            ("* * 0 * *", "UTC", "cron", "day of month 0 is out of range 1-31"),
            ("* * 32 * *", "UTC", "cron", "day of month 32"),
            ("* * * 13 *", "UTC", "cron", "month 13 is out of range 1-12"),
            ("* * * * 8", "UTC", "cron", "day of week 8 is out of range 0-7"),
            ("5-2 * * * *", "UTC", "cron", "minute range 5-2 is reversed"),
            ("* * * * sat-sun", "UTC", "cron", "range sat-sun is reversed"),
            ("*/0 * * * *", "UTC", "cron", "minute step 0"),
            ("*/60 * * * *", "UTC", "cron", "minute step 60"),
            ("0-10/11 * * * *", "UTC", "cron", "step 11 in \"0-10/11\""),
            ("1,,2 * * * *", "UTC", "cron", "\"1,,2\""),
            ("1, * * * *", "UTC", "cron", "\"1,\""),
            ("1- * * * *", "UTC", "cron", "\"1-\""),
            ("*/ * * * *", "UTC", "cron", "\"*/\""),
            ("*/x * * * *", "UTC", "cron", "step \"x\""),
            ("1x * * * *", "UTC", "cron", "\"1x\""),
            ("-5 * * * *", "UTC", "cron", "\"-5\""),
            ("1/2/3 * * * *", "UTC", "cron", "\"1/2/3\""),
            ("? * * * *", "UTC", "cron", "\"?\""),
            ("* mon * * *", "UTC", "cron", "hour \"mon\""),
            ("* * * foo *", "UTC", "cron", "month \"foo\""),
            ("* * * * jan", "UTC", "cron", "day of week \"jan\""),
            ("@every 0s", "UTC", "cron", "\"0s\""),
            ("@every", "UTC", "cron", "@every needs a duration"),
            ("@every 10", "UTC", "cron", "\"10\""),
            ("@every -5s", "UTC", "cron", "\"-5s\""),
            ("@every 1x", "UTC", "cron", "\"1x\""),
            ("@every s", "UTC", "cron", "\"s\""),
            ("@every 367d", "UTC", "cron", "\"367d\""),
            ("@every 1m 30s", "UTC", "cron", "@every takes one duration"),
            ("@fortnightly", "UTC", "cron", "\"@fortnightly\""),
            ("@daily 5", "UTC", "cron", "@daily takes nothing"),
            (String(repeating: "1", count: 201), "UTC", "cron", "201 characters"),
            ("0 2 * * *", "Mars/Olympus", "timezone", "\"Mars/Olympus\""),
            ("0 2 * * *", "", "timezone", "unknown time zone"),
        ]
        for bad in cases {
            let error = self.parseError(bad.expression, timeZone: bad.timeZone)
            #expect(error?.field == bad.field, "\(bad.expression)")
            #expect(error?.message.contains(bad.names) == true, "\(bad.expression): \(String(describing: error))")
        }
        #expect(self.parseError("61 * * * *") == .cron("minute 61 is out of range 0-59 in \"61 * * * *\""))
        #expect(self.parseError("61 * * * *")?.description == "minute 61 is out of range 0-59 in \"61 * * * *\"")
        #expect(try CronSchedule("@every 366d").next(after: Date(timeIntervalSince1970: 0)) == Date(timeIntervalSince1970: 366 * 86_400))
        #expect(try CronSchedule("@every 1s").next(after: Date(timeIntervalSince1970: 0.5)) == Date(timeIntervalSince1970: 1))
    }

    // MARK: Helpers

    private func date(_ iso: String) throws -> Date {
        try #require(ISO8601DateFormatter().date(from: iso), "not an ISO 8601 date: \(iso)")
    }

    /// `count` successive ticks after `after`.
    private func ticks(_ schedule: CronSchedule, after: String, count: Int) throws -> [Date] {
        var found: [Date] = []
        var cursor = try self.date(after)
        for _ in 0..<count {
            let tick = try #require(schedule.next(after: cursor), "\(schedule) has no tick after \(cursor)")
            found.append(tick)
            cursor = tick
        }
        return found
    }

    private func parseError(_ expression: String, timeZone: String = "UTC") -> CronSchedule.ParseError? {
        do {
            _ = try CronSchedule(expression, timeZone: timeZone)
            return nil
        } catch {
            return error
        }
    }
}
