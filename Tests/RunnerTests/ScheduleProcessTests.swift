import Foundation
import Logging
import PostgresNIO
import Testing
import TestSupport

/// Periodic jobs against real runner processes: one job per tick whatever the number of runners and however they
/// die, catch-up after an outage, and the shop's nightly settlement.
@Suite struct ScheduleProcessTests {
    /// Three runners tick an `@every 1s` schedule for about twelve seconds while one of them is killed (SIGKILL) at
    /// every other tick and started again: each tick from the first to the last has exactly one job, and every job ran.
    @Test func eachTickMakesExactlyOneJobWhileRunnersDieAtTheTick() async throws {
        try await withTestDatabase { db in
            try await db.query(
                "INSERT INTO skipper.schedules (name, cron, kind, args) VALUES ('every-second', '@every 1s', 'noop', '{}')")
            let env = ["POLL_INTERVAL": "200ms"]
            var runners = try (0..<3).map { _ in try ChildProcess.skipper("skipper-test-runner", url: db.url, environment: env) }
            defer { for runner in runners { runner.killNow() } }
            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) > 0 FROM skipper.schedule_ticks") == "true"
            }, "\(runners[0].log)")
            for round in 0..<12 {
                // Just before the next whole second, the tick: kill one runner then, every other round.
                let now = Date().timeIntervalSince1970
                try await Task.sleep(for: .milliseconds(Int64((1 - (now - now.rounded(.down))) * 1000) - 3))
                if round % 2 == 0 {
                    let victim = round / 2 % 3
                    runners[victim].killNow()
                    try await Task.sleep(for: .milliseconds(50))
                    runners[victim] = try ChildProcess.skipper("skipper-test-runner", url: db.url, environment: env)
                } else {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            try await Task.sleep(for: .seconds(2))
            let log = runners.map(\.log).joined(separator: "\n---\n").suffix(3000)
            // One job per tick, and no tick left out between the first and the last. In one statement, so one
            // snapshot: the schedule goes on ticking, and counts taken a moment apart differed by the tick between.
            let ticks = try await db.query(
                """
                SELECT count(*), count(DISTINCT tick), count(DISTINCT job_id),
                       extract(epoch FROM max(tick) - min(tick))::int + 1,
                       -- The jobs are the ticks' and nothing else, each made for its own tick.
                       (SELECT count(*) FROM skipper.jobs j JOIN skipper.schedule_ticks t ON t.job_id = j.id
                        WHERE j.meta->>'schedule' = 'every-second' AND (j.meta->>'scheduled_for')::timestamptz = t.tick),
                       (SELECT count(*) FROM skipper.jobs WHERE kind = 'noop')
                FROM skipper.schedule_ticks WHERE schedule = 'every-second'
                """)[0]
            #expect(ticks[0] == ticks[1] && ticks[1] == ticks[2] && ticks[2] == ticks[3], "ticks, distinct, jobs, span: \(ticks)\n\(log)")
            #expect((Int(ticks[0] ?? "") ?? 0) >= 12, "\(ticks)")
            #expect(ticks[4] == ticks[0] && ticks[5] == ticks[0], "ticks, …, jobs of ticks, noop jobs: \(ticks)")
            #expect(try await eventually(timeout: .seconds(40)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status <> 'COMPLETED'") == "0"
            }, "\(log)")
            let schedule = try await db.query(
                "SELECT last_job_id = (SELECT max(job_id) FROM skipper.schedule_ticks), next_run_at > now() FROM skipper.schedules")[0]
            #expect(schedule == ["true", "true"])
        }
    }

    /// Ticks missed while no runner ran: `latest` makes one job, for the latest of them; `none` makes none. A paused
    /// schedule makes nothing.
    @Test func missedTicksMakeAtMostOneCatchUpJob() async throws {
        try await withTestDatabase { db in
            try await db.query(
                """
                INSERT INTO skipper.schedules (name, cron, kind, catch_up, next_run_at) VALUES
                  ('catch-up', '0 * * * *', 'noop', 'latest', date_trunc('hour', now()) - interval '5 hours'),
                  ('skip', '0 * * * *', 'noop', 'none', date_trunc('hour', now()) - interval '5 hours'),
                  ('paused', '0 * * * *', 'noop', 'latest', date_trunc('hour', now()) - interval '5 hours')
                """)
            try await db.query("UPDATE skipper.schedules SET paused = true WHERE name = 'paused'")
            let startedAt = try #require(try await db.scalar("SELECT date_trunc('hour', now())::text"))
            let runner = try ChildProcess.skipper("skipper-test-runner", url: db.url)
            defer { runner.killNow() }
            #expect(try await eventually(timeout: .seconds(20)) {
                try await db.scalar("SELECT count(*) FROM skipper.schedules WHERE next_run_at > now()") == "2"
            }, "\(runner.log)")
            try await Task.sleep(for: .seconds(1))
            let made = try await db.query(
                "SELECT schedule, tick::text FROM skipper.schedule_ticks ORDER BY schedule, tick")
            // Five missed hours make one job, for the latest of them: this hour's tick.
            #expect(made.count == 1 && made.first?[0] == "catch-up", "\(made)")
            let tick = try #require(made.first?[1])
            #expect(try await db.scalar("SELECT \(tick)::timestamptz = \(startedAt)::timestamptz") == "true", "\(tick) \(startedAt)")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "1")
            #expect(try await db.scalar("SELECT next_run_at::text FROM skipper.schedules WHERE name = 'paused'")?.isEmpty == false)
            #expect(try await db.scalar("SELECT next_run_at < now() FROM skipper.schedules WHERE name = 'paused'") == "true")
            #expect(runner.stderr.contains("missed ticks skipped"), "\(runner.log)")
        }
    }

    /// skipper-runner declares the shop's nightly settlement (here every 2 s instead of 02:00): the schedule appears
    /// as declared in code, and its job settles the UTC day before its tick.
    @Test func theNightlySettlementSettlesYesterday() async throws {
        try await withTestDatabase { db in
            try await db.query(
                """
                INSERT INTO transactions (merchant_id, amount_cents, fee_cents, status, paid_at)
                SELECT 1 + g % 3, 1000, 30, 'PAID', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '12 hours' + g * interval '1 second'
                FROM generate_series(1, 300) g
                UNION ALL
                SELECT 9, 5000, 100, 'PAID', now() FROM generate_series(1, 5)
                """)
            let runner = try ChildProcess.runner(url: db.url, environment: ["NIGHTLY_SETTLEMENT": "@every 2s"])
            defer { runner.killNow() }
            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) > 0 FROM skipper.jobs WHERE kind = 'settlement.nightly' AND status = 'COMPLETED'") == "true"
            }, "\(runner.log)")
            #expect(try await db.scalar("SELECT source || ' ' || cron FROM skipper.schedules WHERE name = 'shop.nightly-settlement'") == "code @every 2s")
            let yesterday = try #require(try await db.scalar("SELECT ((now() AT TIME ZONE 'UTC')::date - 1)::text"))
            let rows = try await db.query("SELECT merchant_id::text, date::text, txn_count::text, gross_cents::text FROM settlements ORDER BY merchant_id")
            #expect(rows == [["1", yesterday, "100", "100000"], ["2", yesterday, "100", "100000"], ["3", yesterday, "100", "100000"]], "\(rows)")
        }
    }
}
