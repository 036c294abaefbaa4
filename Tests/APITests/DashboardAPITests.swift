import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import TestSupport

@testable import API

/// What the dashboard reads and does beyond jobs and queues, over HTTP, against what PostgreSQL holds.
@Suite struct DashboardAPITests {
    @Test func runnersAreListedAndAStaleOneIsMarked() async throws {
        try await withAPI { db, client in
            try await db.query(
                """
                INSERT INTO skipper.runners (id, host, pid, queues, kinds, concurrency, lease_ms, heartbeat_at) VALUES
                  ('fresh', 'a', 10, '{default,mail}', '{noop}', 8, 30000, clock_timestamp()),
                  ('stalled', 'b', 20, '{default}', '{noop,sleep}', 4, 30000, clock_timestamp() - interval '20 seconds')
                """)
            try await db.query("INSERT INTO skipper.jobs (kind, status, runner_id, started_at) SELECT 'noop', 'RUNNING', 'fresh', now() FROM generate_series(1, 3)")
            let answer = try await client.send(.get, "/runners")
            #expect(answer.status == .ok, "\(answer.text)")
            let runners = try #require(answer.json["runners"] as? [[String: any Sendable]])
            #expect(runners.map { $0["runner_id"] as? String } == ["fresh", "stalled"])
            #expect(runners[0]["queues"] as? [String] == ["default", "mail"])
            #expect((runners[0]["workers"] as? NSNumber)?.intValue == 8)
            #expect((runners[0]["running"] as? NSNumber)?.intValue == 3)
            #expect((runners[0]["lease_seconds"] as? NSNumber)?.doubleValue == 30)
            #expect(runners[0]["stale"] as? Bool == false)
            #expect(runners[1]["stale"] as? Bool == true)
            #expect(((runners[1]["heartbeat_age_seconds"] as? NSNumber)?.doubleValue ?? 0) >= 20)
        }
    }

    @Test func statsAreReadFromTheRollUpForTheWindowAndQueue() async throws {
        try await withAPI { db, client in
            // Jobs that finished two and three minutes ago, waiting 10 and 30 ms; rolled up as the runners' maintenance does.
            try await db.query(
                """
                INSERT INTO skipper.jobs (kind, queue, status, run_at, started_at, finished_at)
                SELECT 'noop', q, s, date_trunc('minute', now()) - m * interval '1 minute', date_trunc('minute', now()) - m * interval '1 minute' + w * interval '1 ms',
                       date_trunc('minute', now()) - m * interval '1 minute' + interval '1 second'
                FROM (VALUES ('a', 'COMPLETED', 2, 10), ('a', 'FAILED', 2, 30), ('b', 'COMPLETED', 3, 10), ('b', 'COMPLETED', 3, 10)) v(q, s, m, w)
                """)
            #expect(try await db.scalar("SELECT skipper.roll_up_stats(60) > 0") == "true")
            // An old minute, outside the last hour but within the day.
            try await db.query("INSERT INTO skipper.stats_minutely VALUES (date_trunc('minute', now()) - interval '5 hours', '', 7, 0, 0, 1, 2)")
            let hour = try await client.send(.get, "/stats")
            #expect(hour.status == .ok, "\(hour.text)")
            #expect(hour.string("window") == "1h")
            let minutes = try #require(hour.json["minutes"] as? [[String: any Sendable]])
            #expect(minutes.map { ($0["completed"] as? NSNumber)?.intValue } == [2, 1])
            #expect(minutes.map { ($0["failed"] as? NSNumber)?.intValue } == [0, 1])
            #expect((minutes[1]["latency_p50_ms"] as? NSNumber)?.doubleValue == 20)
            #expect((minutes[0]["minute"] as? String)?.hasSuffix(":00.000Z") == true)
            let day = try #require(try await client.send(.get, "/stats?window=24h").json["minutes"] as? [[String: any Sendable]])
            #expect(day.count == 3)
            let queueA = try await client.send(.get, "/stats?queue=a")
            #expect(queueA.string("queue") == "a")
            #expect((queueA.json["minutes"] as? [[String: any Sendable]])?.count == 1)
            #expect(try await client.send(.get, "/stats?window=7d").status == .badRequest)
        }
    }

    @Test func jobsAreFoundByTheirArguments() async throws {
        try await withAPI { db, client in
            try await db.query(
                #"INSERT INTO skipper.jobs (kind, args) VALUES ('noop', '{"merchant_id": 42, "day": "x"}'), ('noop', '{"merchant_id": 7}'), ('noop', '{"merchant_id": "42"}')"#)
            let query = #"{"merchant_id":42}"#.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let found = try await client.send(.get, "/jobs?args=\(query)")
            #expect(found.status == .ok, "\(found.text)")
            let jobs = try #require(found.json["jobs"] as? [[String: any Sendable]])
            #expect(jobs.count == 1)
            #expect(((jobs.first?["args"] as? [String: any Sendable])?["day"] as? String) == "x")
            for bad in ["42", "%5B1%5D", "%7Bnope", "%7B%22a%22%3A%22%5Cu0000%22%7D"] {
                let refused = try await client.send(.get, "/jobs?args=\(bad)")
                #expect(refused.status == .badRequest, "\(bad): \(refused.text)")
                #expect(refused.errorCode == "INVALID_PARAMETER")
            }
        }
    }

    @Test func aFiltersJobsAreCancelledAndRetriedAPageAtATime() async throws {
        try await withAPI { db, client in
            try await db.query("INSERT INTO skipper.jobs (kind, queue) SELECT 'noop', 'mail' FROM generate_series(1, 5)")
            try await db.query("INSERT INTO skipper.jobs (kind, queue) SELECT 'noop', 'other' FROM generate_series(1, 2)")
            try await db.query("INSERT INTO skipper.jobs (kind, queue, status, started_at) VALUES ('noop', 'mail', 'RUNNING', now())")
            // Two pages of three: the QUEUED ones at once, the RUNNING one by a request.
            let first = try await client.send(.post, "/jobs/cancel", json: #"{"queue": "mail", "limit": 3}"#)
            #expect(first.status == .ok, "\(first.text)")
            #expect(first.int("count") == 3)
            let next = try #require(first.int("next"))
            let second = try await client.send(.post, "/jobs/cancel", json: #"{"queue": "mail", "limit": 3, "after": \#(next)}"#)
            #expect(second.int("count") == 3)
            #expect(second.json["next"] is NSNull)
            #expect(try await db.scalar("SELECT string_agg(status || ':' || (cancel_requested_at IS NOT NULL), ',' ORDER BY status) FROM skipper.jobs WHERE queue = 'mail'")
                == "CANCELLED:true,CANCELLED:true,CANCELLED:true,CANCELLED:true,CANCELLED:true,RUNNING:true")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE queue = 'other' AND status = 'QUEUED'") == "2")
            // Again: nothing left to cancel (the RUNNING one was asked already).
            #expect(try await client.send(.post, "/jobs/cancel", json: #"{"queue": "mail"}"#).int("count") == 0)
            // A status the operation cannot change selects nothing.
            #expect(try await client.send(.post, "/jobs/cancel", json: #"{"status": "FAILED"}"#).int("count") == 0)
            let retried = try await client.send(.post, "/jobs/retry", json: #"{"queue": "mail", "status": "CANCELLED"}"#)
            #expect(retried.int("count") == 5, "\(retried.text)")
            #expect((retried.json["job_ids"] as? [Any])?.count == 5)
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE queue = 'mail' AND status = 'QUEUED'") == "5")
            // Bad filters: 422 naming the field.
            for (body, field) in [(#"{"status": "DONE"}"#, "status"), (#"{"limit": 0}"#, "limit"), (#"{"args": [1]}"#, "args")] {
                let refused = try await client.send(.post, "/jobs/retry", json: body)
                #expect(refused.status == .unprocessableContent, "\(body): \(refused.text)")
                #expect(refused.string("message")?.hasPrefix(field) == true, "\(refused.text)")
            }
        }
    }

    /// A page of bulk changes longer than DB_TIMEOUT allows stops at half of it and says where to go on: never a 503
    /// for a page already half changed. Followed to the end, every selected job is changed once.
    @Test func aBulkPageStopsInTimeAndGoesOnWhereItStopped() async throws {
        try await withAPI(databaseTimeout: .milliseconds(300)) { db, client in
            try await db.query("INSERT INTO skipper.jobs (kind, queue) SELECT 'noop', 'mail' FROM generate_series(1, 1500)")
            var after: Int64?
            var (pages, changed) = (0, 0)
            repeat {
                let body = #"{"queue": "mail", "limit": 1000"# + (after.map { #", "after": \#($0)"# } ?? "") + "}"
                let page = try await client.send(.post, "/jobs/cancel", json: body)
                #expect(page.status == .ok, "\(page.text.prefix(300))")
                guard page.status == .ok else { return }
                changed += Int(page.int("count") ?? 0)
                after = page.int("next")
                pages += 1
            } while after != nil && pages < 200
            // 1,500 single-job transactions do not fit in 150 ms on this machine: more pages than the two of 1,000.
            #expect(pages > 2, "\(pages) pages")
            #expect(changed == 1500)
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE queue = 'mail' AND status = 'CANCELLED'") == "1500")
        }
    }

    /// The page and its files are served without a token (the page asks for one); the API behind them is not.
    @Test func theDashboardIsServedOpenAndTheAPIBehindItIsNot() async throws {
        try await withAPI(tokens: ["secret"]) { _, client in
            let page = try await client.send(.get, "/ui")
            #expect(page.status == .ok)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("<script") && page.text.contains("/ui/app.js"))
            let script = try await client.send(.get, "/ui/app.js")
            #expect(script.status == .ok && script.headers[.contentType]?.hasPrefix("text/javascript") == true)
            #expect(try await client.send(.get, "/ui/app.css").headers[.contentType]?.hasPrefix("text/css") == true)
            #expect(try await client.send(.get, "/ui/index.html").status == .notFound)
            #expect(try await client.send(.get, "/ui/secret.txt").status == .notFound)
            let chart = try await client.send(.get, "/ui/vendor/chart.min.js")
            #expect(chart.status == .ok, "Chart.js: install Debian's libjs-chart.js")
            #expect(chart.text.contains("Chart"))
            #expect(try await client.send(.get, "/runners").status == .unauthorized)
            #expect(try await client.send(.get, "/runners", headers: [.authorization: "Bearer secret"]).status == .ok)
        }
    }

    /// The page's files are the ones in ui/ (scripts/embed-ui.sh was run after the last change).
    @Test func theEmbeddedPageIsTheOneInTheRepository() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for name in ["index.html", "app.js", "app.css"] {
            let onDisk = try String(contentsOf: root.appendingPathComponent("ui/\(name)"), encoding: .utf8)
            #expect(EmbeddedUI.files[name] == onDisk, "ui/\(name) changed: run make embed-ui")
        }
    }
}
