import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import TestSupport

@testable import API

/// `/queues` and `/kinds` over HTTP, against what PostgreSQL holds.
@Suite struct QueuesAPITests {
    @Test func queuesAreListedPausedLimitedAndResumed() async throws {
        try await withAPI { db, client in
            try await db.query("INSERT INTO skipper.jobs (kind, queue) SELECT 'noop', 'mail' FROM generate_series(1, 3)")
            let cancelled = try #require(try await db.scalar("INSERT INTO skipper.jobs (kind, queue) VALUES ('noop', 'mail') RETURNING id"))
            #expect(try await client.send(.post, "/jobs/\(cancelled)/cancel").status == .accepted)
            let listed = try await client.send(.get, "/queues")
            #expect(listed.status == .ok)
            let queues = try #require(listed.json["queues"] as? [[String: any Sendable]])
            let mail = try #require(queues.first { $0["queue"] as? String == "mail" })
            let counts = try #require(mail["counts"] as? [String: any Sendable])
            #expect((counts["QUEUED"] as? NSNumber)?.intValue == 3)
            #expect((counts["CANCELLED"] as? NSNumber)?.intValue == 1)
            #expect((counts["FAILED"] as? NSNumber)?.intValue == 0)
            #expect(mail["paused"] as? Bool == false)
            #expect((mail["runners"] as? NSNumber)?.intValue == 0)
            #expect(mail["oldest_queued_seconds"] is NSNumber)

            // Pausing a queue no job names yet creates its row; it is then listed.
            let paused = try await client.send(.post, "/queues/reports/pause")
            #expect(paused.status == .ok, "\(paused.text)")
            #expect(paused.json["paused"] as? Bool == true)
            #expect(try await db.scalar("SELECT paused FROM skipper.queues WHERE name = 'reports'") == "true")
            let names = (try await client.send(.get, "/queues").json["queues"] as? [[String: any Sendable]])?.compactMap { $0["queue"] as? String }
            #expect(names == ["mail", "reports"])
            #expect(try await client.send(.post, "/queues/reports/resume").json["paused"] as? Bool == false)
            // A name that needs encoding in a path is the decoded name.
            let spaced = try await client.send(.post, "/queues/daily%20mail%E2%9C%93/pause")
            #expect(spaced.string("queue") == "daily mail✓", "\(spaced.text)")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.queues WHERE name = 'daily mail✓'") == "1")
            #expect(try await client.send(.post, "/queues/bad%FF/pause").status == .badRequest)
            try await db.query("DELETE FROM skipper.queues WHERE name = 'daily mail✓'")

            // Limits: set, kept when left out, cleared with null.
            let limited = try await client.send(
                .patch, "/queues/mail", json: #"{"concurrency": 1, "partition_by": "args.merchant_id", "rate": {"limit": 60, "period": "1m"}}"#)
            #expect(limited.status == .ok, "\(limited.text)")
            let limits = try #require(limited.json["limits"] as? [String: any Sendable])
            #expect((limits["concurrency"] as? NSNumber)?.intValue == 1)
            #expect(limits["partition_by"] as? String == "args.merchant_id")
            #expect((limits["rate"] as? [String: any Sendable])?["period"] as? String == "60s")
            #expect(try await db.scalar("SELECT concat_ws(' ', concurrency, partition_by, rate_limit, rate_period) FROM skipper.queues WHERE name = 'mail'")
                == "1 args.merchant_id 60 00:01:00")
            _ = try await client.send(.patch, "/queues/mail", json: #"{"rate": null}"#)
            #expect(try await db.scalar("SELECT concat_ws(' ', concurrency, partition_by, rate_limit) FROM skipper.queues WHERE name = 'mail'")
                == "1 args.merchant_id")

            // Bad limits: a 422 naming the field, and nothing stored.
            for (body, field) in [
                (#"{"concurrency": 0}"#, "concurrency"),
                (#"{"concurrency": -3}"#, "concurrency"),
                (#"{"partition_by": "merchant_id"}"#, "partition_by"),
                (#"{"partition_by": "args."}"#, "partition_by"),
                (#"{"rate": {"limit": 0, "period": "1m"}}"#, "rate.limit"),
                (#"{"rate": {"limit": 5, "period": "0s"}}"#, "rate.period"),
                (#"{"rate": {"limit": 5, "period": "soon"}}"#, "rate.period"),
                (#"{"rate": {"limit": 5}}"#, "rate.period"),
                (#"{"concurrency": null}"#, "partition_by"),
                (#"{"speed": 3}"#, "speed"),
            ] {
                let refused = try await client.send(.patch, "/queues/mail", json: body)
                #expect(refused.status == .unprocessableContent, "\(body): \(refused.text)")
                #expect(refused.string("message")?.hasPrefix(field) == true, "\(body): \(refused.text)")
            }
            #expect(try await db.scalar("SELECT concat_ws(' ', concurrency, partition_by, rate_limit) FROM skipper.queues WHERE name = 'mail'")
                == "1 args.merchant_id")
        }
    }

    @Test func kindsCarryLimitsAcrossQueues() async throws {
        try await withAPI { db, client in
            let set = try await client.send(.patch, "/kinds/sleep", json: #"{"concurrency": 3}"#)
            #expect(set.status == .ok, "\(set.text)")
            #expect(try await db.scalar("SELECT concurrency FROM skipper.kinds WHERE kind = 'sleep'") == "3")
            let kinds = try await client.send(.get, "/kinds")
            let sleep = (kinds.json["kinds"] as? [[String: any Sendable]])?.first { $0["kind"] as? String == "sleep" }
            #expect(((sleep?["limits"] as? [String: any Sendable])?["concurrency"] as? NSNumber)?.intValue == 3, "\(kinds.text)")
            #expect(try await client.send(.patch, "/kinds/sleep", json: #"{"rate": {"limit": 10, "period": "1s"}}"#).status == .ok)
            #expect(try await db.scalar("SELECT concurrency || ' ' || rate_limit || ' ' || rate_period FROM skipper.kinds WHERE kind = 'sleep'") == "3 10 00:00:01")
            // A kind no runner registered is not made up by limiting it (submits would take it for registered).
            #expect(try await client.send(.patch, "/kinds/invoice.render", json: #"{"concurrency": 2}"#).status == .notFound)
            #expect(try await db.scalar("SELECT count(*) FROM skipper.kinds WHERE kind = 'invoice.render'") == "0")
        }
    }

    /// A job's own timeout over REST: stored in milliseconds, shown in the resource; a bad one is a 422.
    @Test func aJobsTimeoutIsStoredAndCheckedAtSubmit() async throws {
        try await withAPI { db, client in
            let job = try await client.send(.post, "/jobs", json: #"{"kind": "sleep", "args": {"ms": 10}, "timeout": "1m30s"}"#)
            // "1m30s" is not one unit: refused, naming the field.
            #expect(job.status == .unprocessableContent, "\(job.text)")
            #expect(job.string("message")?.hasPrefix("timeout") == true)
            let ok = try await client.send(.post, "/jobs", json: #"{"kind": "sleep", "args": {"ms": 10}, "timeout": "90s"}"#)
            #expect(ok.status == .accepted, "\(ok.text)")
            #expect(ok.int("timeout_ms") == 90_000)
            #expect(ok.int("snoozed") == 0)
            for bad in [#""0s""#, #""-1s""#, #""30d""#, #""soon""#, "30"] {
                let refused = try await client.send(.post, "/jobs", json: #"{"kind": "noop", "timeout": \#(bad)}"#)
                #expect(refused.status == .unprocessableContent, "\(bad): \(refused.text)")
            }
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "1")
        }
    }
}
