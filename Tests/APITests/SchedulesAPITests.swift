import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import TestSupport

@testable import API

/// `/schedules` over HTTP, against what PostgreSQL holds.
@Suite struct SchedulesAPITests {
    @Test func schedulesAreCreatedReplacedPausedAndDeleted() async throws {
        try await withAPI { db, client in
            let created = try await client.send(
                .post, "/schedules",
                json: #"{"name": "tidy-up", "cron": "30 3 * * 1-5", "timezone": "Europe/Berlin", "kind": "sleep", "args": {"ms": 10}, "timeout": "5m"}"#)
            #expect(created.status == .created, "\(created.text)")
            #expect(created.headers[.location] == "/schedules/tidy-up")
            #expect(created.string("source") == "api")
            #expect(created.int("timeout_ms") == 300_000)
            // Its next tick is a weekday 03:30 in Berlin.
            #expect(try await db.scalar(
                """
                SELECT extract(isodow FROM next_run_at AT TIME ZONE 'Europe/Berlin') BETWEEN 1 AND 5
                   AND to_char(next_run_at AT TIME ZONE 'Europe/Berlin', 'HH24:MI') = '03:30' AND next_run_at > now()
                FROM skipper.schedules WHERE name = 'tidy-up'
                """) == "true")
            let next = try #require(created.string("next_run_at"))

            // Replacing with the same cron keeps the next tick; paused stays paused.
            #expect(try await client.send(.post, "/schedules/tidy-up/pause").json["paused"] as? Bool == true)
            let replaced = try await client.send(
                .post, "/schedules", json: #"{"name": "tidy-up", "cron": "30 3 * * 1-5", "timezone": "Europe/Berlin", "kind": "noop"}"#)
            #expect(replaced.status == .ok, "\(replaced.text)")
            #expect(replaced.string("kind") == "noop" && replaced.json["paused"] as? Bool == true)
            #expect(replaced.string("next_run_at") == next)
            let resumed = try await client.send(.post, "/schedules/tidy-up/resume")
            #expect(resumed.json["paused"] as? Bool == false)

            let listed = try await client.send(.get, "/schedules")
            #expect((listed.json["schedules"] as? [[String: any Sendable]])?.map { $0["name"] as? String } == ["tidy-up"])
            #expect(try await client.send(.get, "/schedules/tidy-up").status == .ok)
            #expect(try await client.send(.delete, "/schedules/tidy-up").status == .noContent)
            #expect(try await client.send(.delete, "/schedules/tidy-up").status == .notFound)
            #expect(try await client.send(.get, "/schedules/tidy-up").status == .notFound)
            #expect(try await client.send(.post, "/schedules/nope/pause").status == .notFound)
        }
    }

    @Test func badSchedulesAreRefusedNamingTheFieldAndNothingIsStored() async throws {
        try await withAPI { db, client in
            for (body, status, prefix) in [
                (#"{"name": "a", "cron": "61 * * * *", "kind": "noop"}"#, 422, "cron"),
                (#"{"name": "a", "cron": "* * * *", "kind": "noop"}"#, 422, "cron"),
                (#"{"name": "a", "cron": "@every 0s", "kind": "noop"}"#, 422, "cron"),
                (#"{"name": "a", "cron": "@fortnightly", "kind": "noop"}"#, 422, "cron"),
                (#"{"name": "a", "cron": "0 0 30 2 *", "kind": "noop"}"#, 422, "cron"),
                (#"{"name": "a", "cron": "@daily", "timezone": "Mars/Olympus", "kind": "noop"}"#, 422, "timezone"),
                (#"{"name": "-a", "cron": "@daily", "kind": "noop"}"#, 422, "name"),
                (#"{"name": "a b", "cron": "@daily", "kind": "noop"}"#, 422, "name"),
                (#"{"name": "a", "cron": "@daily", "kind": "nobody.runs.this"}"#, 422, "kind"),
                (#"{"name": "a", "cron": "@daily", "kind": "sleep", "args": {"ms": -1}}"#, 422, "args.ms"),
                (#"{"name": "a", "cron": "@daily", "kind": "noop", "catch_up": "all"}"#, 422, "catch_up"),
                (#"{"name": "a", "cron": "@daily", "kind": "noop", "timeout": "0s"}"#, 422, "timeout"),
                (#"{"name": "a", "cron": "@daily"}"#, 422, "kind"),
            ] {
                let refused = try await client.send(.post, "/schedules", json: body)
                #expect(refused.status.code == status, "\(body): \(refused.text)")
                #expect(refused.string("message")?.hasPrefix(prefix) == true, "\(body): \(refused.text)")
            }
            #expect(try await db.scalar("SELECT count(*) FROM skipper.schedules") == "0")
        }
    }
}
