import Foundation
import Testing
import TestSupport

/// Behaviour about processes, with real skipper-runner processes against a real PostgreSQL.
@Suite struct RunnerProcessTests {
    @Test func fourRunnersDrainTwentyThousandJobsEachExactlyOnce() async throws {
        try await withTestDatabase { db in
            try await db.query("INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, 20000)")
            let runners = try (0..<4).map { _ in try ChildProcess.runner(url: db.url, environment: ["WORKERS": "16"]) }
            let drained = try await eventually(timeout: .seconds(120), every: .milliseconds(200)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status <> 'COMPLETED'") == "0"
            }
            for runner in runners { await runner.stop() }
            #expect(drained)
            // Each job finished on its first attempt, with no error on record (a rescue or a failure would leave one).
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED' AND attempt = 1 AND errors = '[]'") == "20000")
            // All four took part.
            #expect(try await db.scalar("SELECT count(DISTINCT runner_id) FROM skipper.jobs") == "4")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.runners") == "0")
        }
    }

    @Test func jobsOfAKilledRunnerAreRescuedAndFinishedByAnother() async throws {
        try await withTestDatabase { db in
            try await db.query("INSERT INTO skipper.jobs (kind, args) SELECT 'sleep', '{\"ms\": 2000}' FROM generate_series(1, 4)")
            let env = ["RESCUE_AFTER": "2s", "WORKERS": "4"]
            let doomed = try ChildProcess.runner(url: db.url, environment: env)
            #expect(try await eventually { try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'RUNNING'") == "4" })
            doomed.signal(SIGKILL)
            _ = await doomed.waitForExit(timeout: .seconds(5))
            let rescuer = try ChildProcess.runner(url: db.url, environment: env)
            defer { rescuer.killNow() }
            var done = false
            for _ in 0..<150 where !done {
                done = try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'") == "4"
                if !done { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(done, "\(rescuer.log)")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE attempt = 2 AND jsonb_array_length(errors) = 1 AND errors->0->>'error' LIKE '%stopped heartbeating%'") == "4")
            await rescuer.stop()
        }
    }

    @Test func cancellingARunningJobStopsItWithinASecond() async throws {
        try await withTestDatabase { db in
            let runner = try ChildProcess.runner(url: db.url)
            defer { runner.killNow() }
            let id = try #require(try await db.scalar("INSERT INTO skipper.jobs (kind, args) VALUES ('sleep', '{\"ms\": 60000}') RETURNING id"))
            try await db.query("SELECT pg_notify('skipper_jobs', 'default')")
            #expect(try await eventually { try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(Int64(id)!)") == "RUNNING" })
            let started = ContinuousClock.now
            try await db.query(
                """
                UPDATE skipper.jobs SET cancel_requested_at = now() WHERE id = \(Int64(id)!);
                """)
            try await db.query("SELECT pg_notify('skipper_cancel', \(id))")
            let cancelled = try await eventually(timeout: .seconds(5), every: .milliseconds(10)) {
                try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(Int64(id)!)") == "CANCELLED"
            }
            #expect(cancelled)
            // Measured by the server's clock, from the request to the job's end, not by this test's polling.
            let latency = try #require(try await db.scalar("SELECT round(extract(epoch FROM finished_at - cancel_requested_at) * 1000) FROM skipper.jobs WHERE id = \(Int64(id)!)").flatMap { Double($0) })
            #expect(latency < 1000, "cancel took \(latency) ms")
            #expect(ContinuousClock.now - started < .seconds(5))
            await runner.stop()
        }
    }

    @Test func failingJobsRetryUntilTheyPassOrRunOutOfAttempts() async throws {
        try await withTestDatabase { db in
            let runner = try ChildProcess.runner(url: db.url, environment: ["POLL_INTERVAL": "100ms"])
            defer { runner.killNow() }
            let passes = try #require(try await db.scalar("INSERT INTO skipper.jobs (kind, args, max_attempts) VALUES ('fail', '{\"times\": 2, \"retry_ms\": 50, \"message\": \"flaky\"}', 3) RETURNING id"))
            let fails = try #require(try await db.scalar("INSERT INTO skipper.jobs (kind, args, max_attempts) VALUES ('fail', '{\"times\": 2, \"retry_ms\": 50}', 2) RETURNING id"))
            let finished = try await eventually(timeout: .seconds(20)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status IN ('COMPLETED', 'FAILED')") == "2"
            }
            #expect(finished, "\(runner.log)")
            #expect(try await db.scalar("SELECT status || ' ' || attempt || ' ' || jsonb_array_length(errors) || ' ' || (errors->1->>'error') FROM skipper.jobs WHERE id = \(Int64(passes)!)") == "COMPLETED 3 2 flaky")
            #expect(try await db.scalar("SELECT status || ' ' || attempt || ' ' || jsonb_array_length(errors) FROM skipper.jobs WHERE id = \(Int64(fails)!)") == "FAILED 2 2")
            await runner.stop()
        }
    }

    @Test func sigtermReleasesALongJobToAnotherRunnerAndExitsWithinGrace() async throws {
        try await withTestDatabase { db in
            let first = try ChildProcess.runner(url: db.url, environment: ["SHUTDOWN_GRACE": "1s"])
            let id = try #require(try await db.scalar("INSERT INTO skipper.jobs (kind, args) VALUES ('sleep', '{\"ms\": 4000}') RETURNING id").flatMap { Int64($0) })
            try await db.query("SELECT pg_notify('skipper_jobs', 'default')")
            #expect(try await eventually { try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(id)") == "RUNNING" })
            let firstLease = try #require(try await db.scalar("SELECT lease FROM skipper.jobs WHERE id = \(id)"))
            let signalled = ContinuousClock.now
            first.signal(SIGTERM)
            let status = await first.waitForExit(timeout: .seconds(10))
            #expect(status == 0, "\(first.log)")
            #expect(ContinuousClock.now - signalled < .seconds(3))
            // Released without spending the attempt, and the runner's row is gone.
            #expect(try await db.scalar("SELECT status || ' ' || attempt FROM skipper.jobs WHERE id = \(id)") == "QUEUED 0")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.runners") == "0")
            let second = try ChildProcess.runner(url: db.url)
            defer { second.killNow() }
            #expect(try await eventually(timeout: .seconds(15)) { try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(id)") == "COMPLETED" })
            // Run once to the end under a claim of its own, on the attempt the release gave back.
            #expect(try await db.scalar("SELECT attempt || ' ' || (lease::text <> \(firstLease)) FROM skipper.jobs WHERE id = \(id)") == "1 true")
            await second.stop()
        }
    }

    /// A claim that commits while its answer is lost (the connection drops) leaves a job RUNNING under a runner
    /// that never started it and whose heartbeat keeps rescue away: the runner's sweep finds it and releases it.
    @Test func aJobHeldButNeverStartedIsReleasedAndRun() async throws {
        try await withTestDatabase { db in
            let runner = try ChildProcess.runner(url: db.url, environment: ["CANCEL_SWEEP": "500ms", "RESCUE_AFTER": "60s"])
            defer { runner.killNow() }
            #expect(try await eventually { try await db.scalar("SELECT count(*) FROM skipper.runners") == "1" })
            let runnerID = try #require(try await db.scalar("SELECT id FROM skipper.runners"))
            let id = try #require(try await db.scalar(
                """
                INSERT INTO skipper.jobs (kind, status, attempt, runner_id, lease, started_at)
                VALUES ('noop', 'RUNNING', 1, \(runnerID), nextval('skipper.job_leases'), now() - interval '1 minute') RETURNING id
                """
            ).flatMap { Int64($0) })
            #expect(try await eventually(timeout: .seconds(15)) {
                try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(id)") == "COMPLETED"
            }, "\(runner.log)")
            // Released without spending an attempt, then claimed and run once.
            #expect(try await db.scalar("SELECT attempt || ' ' || (lease > 1) FROM skipper.jobs WHERE id = \(id)") == "1 true")
            #expect(runner.log.contains("never started here"))
            await runner.stop()
        }
    }

    @Test func aSecondSignalStopsAtOnce() async throws {
        try await withTestDatabase { db in
            let runner = try ChildProcess.runner(url: db.url, environment: ["SHUTDOWN_GRACE": "60s"])
            try await db.query("INSERT INTO skipper.jobs (kind, args) VALUES ('sleep', '{\"ms\": 30000}')")
            try await db.query("SELECT pg_notify('skipper_jobs', 'default')")
            #expect(try await eventually { try await db.scalar("SELECT status FROM skipper.jobs") == "RUNNING" })
            runner.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(300))
            #expect(runner.isRunning)
            runner.signal(SIGTERM)
            let status = await runner.waitForExit(timeout: .seconds(3))
            #expect(status != nil && status != 0)
        }
    }

    @Test func jobsSurviveAPostgresRestartWithNoneLostOrStuck() async throws {
        try await PrivateCluster.with { cluster in
            let db = TestDatabase(config: cluster.config)
            try await db.query("INSERT INTO skipper.jobs (kind, args) SELECT 'sleep', '{\"ms\": 300}' FROM generate_series(1, 200)")
            let env = ["RESCUE_AFTER": "3s", "WORKERS": "8", "POLL_INTERVAL": "200ms"]
            let runners = try (0..<2).map { _ in try ChildProcess.runner(url: cluster.url, environment: env) }
            #expect(try await eventually { try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'").flatMap { Int($0) } ?? 0 >= 10 })
            try await cluster.stop()
            try await Task.sleep(for: .seconds(5))
            try await cluster.start()
            let done = try await eventually(timeout: .seconds(90), every: .milliseconds(250)) {
                (try? await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'")) == "200"
            }
            if !done {
                // Everything needed to tell a stuck runner from a stuck rescue.
                let jobs = try? await db.scalar(
                    "SELECT string_agg(s, '; ') FROM (SELECT status || ' ' || coalesce(runner_id, '-') || ': ' || count(*) AS s FROM skipper.jobs GROUP BY status, runner_id) x")
                let beats = try? await db.scalar(
                    "SELECT string_agg(id || ' ' || (now() - heartbeat_at)::text, '; ') FROM skipper.runners")
                Issue.record("not all completed; jobs: \(jobs ?? "?"); runners: \(beats ?? "?")\n--- runner 0\n\(runners[0].log)\n--- runner 1\n\(runners[1].log)")
            }
            let allRunning = runners.allSatisfy { $0.isRunning }
            #expect(allRunning)
            // At-least-once: a job may run again only if its attempt was rescued; none is stuck or failed.
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status <> 'COMPLETED'") == "0")
            // An attempt beyond the first is one a rescue gave back, with its error on record.
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE attempt > 1 + jsonb_array_length(errors)") == "0")
            for runner in runners { await runner.stop() }
        }
    }
}
