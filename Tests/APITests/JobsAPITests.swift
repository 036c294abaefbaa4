import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Skipper
import PostgresNIO
import Testing
import TestSupport

@testable import API

@Suite struct JobsAPITests {
    @Test func submitReadAndFindAJobWithItsRequestID() async throws {
        try await withAPI { db, client in
            let submitted = try await client.send(
                .post, "/jobs", json: #"{"kind": "noop", "args": {"n": 1}, "queue": "mail", "priority": -5, "max_attempts": 3}"#,
                headers: [.requestID: "req-42"])
            #expect(submitted.status == .accepted)
            #expect(submitted.headers[.requestID] == "req-42")
            let id = try #require(submitted.int("job_id"))
            #expect(submitted.headers[.location] == "/jobs/\(id)")
            #expect(submitted.string("status") == "QUEUED")
            #expect(submitted.string("queue") == "mail")
            #expect(submitted.int("priority") == -5)
            #expect(submitted.int("max_attempts") == 3)
            #expect(submitted.json["progress"] as? Double == 0)
            #expect(submitted.json["download_url"] is NSNull)

            let read = try await client.send(.get, "/jobs/\(id)")
            #expect(read.status == .ok)
            #expect(read.int("job_id") == id)
            #expect((read.json["args"] as? [String: Any])?["n"] as? Int == 1)
            // The request id is stored with the job, where the runner reads it for its logs.
            #expect(try await db.scalar("SELECT meta->>'request_id' FROM skipper.jobs WHERE id = \(id)") == "req-42")

            // Without a header, one is generated and echoed.
            let other = try await client.send(.get, "/jobs/\(id)")
            #expect((other.headers[.requestID] ?? "").count == 36)
        }
    }

    @Test func aUniqueKeyWithAQueuedJobReturnsThatJob() async throws {
        try await withAPI { db, client in
            let first = try await client.send(.post, "/jobs", json: #"{"kind": "noop", "unique_key": "report"}"#)
            let second = try await client.send(.post, "/jobs", json: #"{"kind": "noop", "unique_key": "report"}"#)
            #expect(first.status == .accepted)
            #expect(second.status == .ok)
            #expect(second.int("job_id") == first.int("job_id"))
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "1")
        }
    }

    /// 300 clients at once: each gets 202 with its own job (its args, options and request id), every job is
    /// stored once, and the submissions shared commits rather than paying one each.
    @Test func concurrentSubmissionsEachGetTheirOwnJob() async throws {
        try await withAPI { db, client in
            let port = try #require(client.port)
            let count = 300
            let responses = await concurrentResponses(count: count, url: { _ in "http://127.0.0.1:\(port)/jobs" }) { i in
                let runAt = i % 4 == 0 ? #", "run_at": "2031-01-01T00:00:\#(10 + i % 50)Z""# : ""
                return #"{"kind": "noop", "args": {"n": \#(i)}, "queue": "q\#(i % 3)", "priority": \#(i % 7), "max_attempts": \#(1 + i % 5)\#(runAt)}"#
            }
            var ids: Set<Int64> = []
            for (i, response) in responses.enumerated() {
                #expect(response.status == 202, "\(i): \(String(decoding: response.body, as: UTF8.self))")
                let job = try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
                #expect((job["args"] as? [String: Any])?["n"] as? Int == i)
                #expect(job["queue"] as? String == "q\(i % 3)")
                #expect(job["priority"] as? Int == i % 7)
                #expect(job["max_attempts"] as? Int == 1 + i % 5)
                if i % 4 == 0 { #expect(job["run_at"] as? String == "2031-01-01T00:00:\(10 + i % 50).000Z") }
                let id = try #require((job["job_id"] as? NSNumber)?.int64Value)
                ids.insert(id)
                #expect(try await db.scalar("SELECT (args->>'n') || ' ' || (meta->>'request_id') FROM skipper.jobs WHERE id = \(id)") == "\(i) req-\(i)")
            }
            #expect(ids.count == count)
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "\(count)")
            let commits = Int(try await db.scalar("SELECT count(DISTINCT xmin::text) FROM skipper.jobs") ?? "") ?? 0
            #expect(commits < count, "\(commits) commits for \(count) submissions")
        }
    }

    @Test func runAtInTheFutureIsKept() async throws {
        try await withAPI { db, client in
            let response = try await client.send(.post, "/jobs", json: #"{"kind": "noop", "run_at": "2030-01-02T03:04:05Z"}"#)
            #expect(response.status == .accepted)
            #expect(response.string("run_at") == "2030-01-02T03:04:05.000Z")
            // Offsets, fractions, lower case and a leap day name the instant they say.
            for (sent, stored) in [
                ("2030-01-02T08:34:05.25+05:30", "2030-01-02T03:04:05.250Z"), ("2030-01-01t23:04:05-04:00", "2030-01-02T03:04:05.000Z"),
                ("2028-02-29T12:00:00z", "2028-02-29T12:00:00.000Z"), ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
            ] {
                let accepted = try await client.send(.post, "/jobs", json: #"{"kind": "noop", "run_at": "\#(sent)"}"#)
                #expect(accepted.status == .accepted, "\(sent): \(accepted.text)")
                #expect(accepted.string("run_at") == stored, "\(sent)")
            }
        }
    }

    @Test func listingPagesNewestFirstWithFilters() async throws {
        try await withAPI { db, client in
            var ids: [Int64] = []
            for i in 0..<7 {
                let queue = i % 2 == 0 ? "even" : "odd"
                ids.append(try #require(try await client.send(.post, "/jobs", json: #"{"kind": "noop", "queue": "\#(queue)"}"#).int("job_id")))
            }
            _ = try await client.send(.post, "/jobs/\(ids[0])/cancel")
            // Walk every page of 3.
            var seen: [Int64] = []
            var after: String?
            repeat {
                let page = try await client.send(.get, "/jobs?limit=3" + (after.map { "&after=\($0)" } ?? ""))
                #expect(page.status == .ok)
                let jobs = try #require(page.json["jobs"] as? [[String: Any]])
                #expect(jobs.count <= 3)
                seen += jobs.compactMap { ($0["job_id"] as? NSNumber)?.int64Value }
                after = page.json["next"] as? String
            } while after != nil
            #expect(seen == ids.reversed())

            let odd = try await client.send(.get, "/jobs?queue=odd")
            #expect((odd.json["jobs"] as? [[String: Any]])?.count == 3)
            let cancelled = try await client.send(.get, "/jobs?status=CANCELLED&kind=noop")
            #expect((cancelled.json["jobs"] as? [[String: Any]])?.compactMap { ($0["job_id"] as? NSNumber)?.int64Value } == [ids[0]])
            #expect(cancelled.json["next"] is NSNull)
        }
    }

    @Test func listingFiltersAreServedByIndexes() async throws {
        try await withAPI { db, _ in
            // Finished jobs live in a partition per day, each with its own list indexes.
            _ = try await db.query(
                "INSERT INTO skipper.jobs (kind, queue, status, finished_at) SELECT 'noop', 'q' || (i % 10), 'COMPLETED', now() FROM generate_series(1, 20000) i")
            _ = try await db.query("ANALYZE skipper.jobs")
            let partition = try #require(try await db.scalar("SELECT relname FROM pg_class WHERE oid = (SELECT tableoid FROM skipper.jobs WHERE finished_at IS NOT NULL LIMIT 1)"))
            #expect(partition.hasPrefix("jobs_2"))
            for filter in ["status = 'FAILED' AND j.finished_at IS NOT NULL", "kind = 'rare'", "queue = 'nowhere'"] {
                let plan = try await db.query(PostgresQuery(unsafeSQL: "EXPLAIN SELECT j.id FROM skipper.jobs j WHERE j.\(filter) ORDER BY j.id DESC LIMIT 51"))
                let text = plan.map { $0.compactMap { $0 }.joined() }.joined(separator: "\n")
                // The day's partition, which holds the 20,000 jobs, is read through its index (empty ones cost nothing).
                #expect(text.contains("Scan Backward using \(partition)_"), "\(filter): \(text)")
                #expect(!text.contains("Seq Scan on \(partition)"), "\(filter): \(text)")
            }
        }
    }

    @Test func cancelAndRetry() async throws {
        try await withAPI { db, client in
            let id = try #require(try await client.send(.post, "/jobs", json: #"{"kind": "noop", "max_attempts": 2}"#).int("job_id"))
            let cancelled = try await client.send(.post, "/jobs/\(id)/cancel")
            #expect(cancelled.status == .accepted)
            #expect(cancelled.string("status") == "CANCELLED")
            let again = try await client.send(.post, "/jobs/\(id)/cancel")
            #expect(again.status == .conflict)
            #expect(again.errorCode == "JOB_FINISHED")

            _ = try await db.query("UPDATE skipper.jobs SET attempt = 2 WHERE id = \(id)")
            let retried = try await client.send(.post, "/jobs/\(id)/retry")
            #expect(retried.status == .accepted)
            #expect(retried.string("status") == "QUEUED")
            #expect(retried.int("attempt") == 0)
            let notAgain = try await client.send(.post, "/jobs/\(id)/retry")
            #expect(notAgain.status == .conflict)
            #expect(notAgain.errorCode == "JOB_NOT_RETRYABLE")
            #expect(try await client.send(.post, "/jobs/999999/retry").status == .notFound)
            #expect(try await client.send(.post, "/jobs/999999/cancel").status == .notFound)
        }
    }

    /// Everything a client can get wrong: a clear 4xx with the error code, and nothing stored.
    @Test func malformedRequestsGetAClearError() async throws {
        let big = #"{"kind": "noop", "args": {"pad": ""# + String(repeating: "x", count: 1_100_000) + #""}}"#
        // 100 letters with a combining accent: 100 characters to Swift, 200 to PostgreSQL's length().
        let accented = #"{"kind": "noop", "queue": ""# + String(repeating: "e\u{301}", count: 100) + #""}"#
        let deep = #"{"kind": "noop", "args": {"a": "# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}}"
        let cases: [(HTTPRequest.Method, String, String?, HTTPResponse.Status, String)] = [
            (.post, "/jobs", "{bad", .badRequest, "INVALID_JSON"),
            (.post, "/jobs", accented, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", deep, .badRequest, "INVALID_JSON"),
            (.post, "/jobs", "", .badRequest, "INVALID_JSON"),
            (.post, "/jobs", "[1, 2]", .badRequest, "INVALID_JSON"),
            (.post, "/jobs", "{}", .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": 7}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": ""}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "prority": 1}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "priority": 40000}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "priority": "high"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "priority": 1.5}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "max_attempts": 0}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "run_at": "tomorrow"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "run_at": "2026-13-45T00:00:00Z"}"#, .unprocessableContent, "INVALID_FIELD"),
            // Beyond PostgreSQL's range (a 500 before), and before the Gregorian calendar (stored as another day).
            (.post, "/jobs", #"{"kind": "noop", "run_at": "294277-01-01T00:00:00Z"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "run_at": "-4713-01-01T00:00:00Z"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "run_at": "0001-01-01T00:00:00Z"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "priority": -32768, "run_at": "1582-10-10T00:00:00Z"}"#, .unprocessableContent, "INVALID_FIELD"),
            // Impossible values were rolled over into another time (February 30 became March 2, +99:00 read as +09:00).
            (.post, "/jobs", #"{"kind": "noop", "run_at": "2026-02-30T00:00:00Z"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "run_at": "2026-02-29T00:00:00Z"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "run_at": "2026-12-01T24:00:00Z"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "run_at": "2026-12-01T10:00:00+99:00"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "run_at": "2026-12-01T10:00:00+24:00"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "run_at": "2026-12-01T10:00:00.1234567891Z"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "args": [1]}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "queue": "a\u0000b"}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "args": {"note": "a\u0000b"}}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "noop", "args": {"deep": [{"a\u0000": 1}]}}"#, .unprocessableContent, "INVALID_FIELD"),
            (.post, "/jobs", #"{"kind": "mystery"}"#, .unprocessableContent, "UNKNOWN_KIND"),
            (.post, "/jobs", #"{"kind": "sleep", "args": {"ms": "long"}}"#, .unprocessableContent, "INVALID_ARGS"),
            (.post, "/jobs", #"{"kind": "sleep", "args": {}}"#, .unprocessableContent, "INVALID_ARGS"),
            (.post, "/jobs", #"{"kind": "sleep", "args": {"ms": 1.5}}"#, .unprocessableContent, "INVALID_ARGS"),
            (.post, "/jobs", #"{"kind": "settlement", "args": {"from": "2025-01-31", "to": "2025-01-01"}}"#, .unprocessableContent, "INVALID_ARGS"),
            (.post, "/jobs", #"{"kind": "settlement", "args": {"from": "2025-01-01", "to": "2025-01-02", "parallelism": 99}}"#, .unprocessableContent, "INVALID_ARGS"),
            (.post, "/jobs", #"{"kind": "sleep", "args": {"ms": 1e300}}"#, .unprocessableContent, "INVALID_ARGS"),
            (.post, "/jobs", big, .contentTooLarge, "PAYLOAD_TOO_LARGE"),
            (.get, "/jobs/abc", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs/0", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs/99999999999999999999", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs/424242", nil, .notFound, "NOT_FOUND"),
            (.get, "/jobs/424242/events", nil, .notFound, "NOT_FOUND"),
            (.post, "/jobs/abc/cancel", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs?status=DONE", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs?limit=0", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs?limit=1001", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs?limit=ten", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs?after=-3", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs?sort=asc", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs?kind=%00", nil, .badRequest, "INVALID_PARAMETER"),
            (.get, "/jobs?queue=a%0Ab", nil, .badRequest, "INVALID_PARAMETER"),
            (.delete, "/jobs", nil, .methodNotAllowed, "METHOD_NOT_ALLOWED"),
            (.put, "/jobs/1", "{}", .methodNotAllowed, "METHOD_NOT_ALLOWED"),
            (.get, "/jobs/1/cancel", nil, .methodNotAllowed, "METHOD_NOT_ALLOWED"),
            (.get, "/jobs/settlement", nil, .methodNotAllowed, "METHOD_NOT_ALLOWED"),
            (.get, "/nowhere", nil, .notFound, "NOT_FOUND"),
        ]
        try await withAPI { db, client in
            let kept = try #require(try await client.send(.post, "/jobs", json: #"{"kind": "noop"}"#).int("job_id"))
            for (method, uri, body, status, code) in cases {
                let response = try await client.send(method, uri, json: body)
                #expect(response.status == status, "\(method) \(uri) \(body?.prefix(60) ?? ""): \(response.text.prefix(200))")
                #expect(response.errorCode == code, "\(method) \(uri) \(body?.prefix(60) ?? ""): \(response.text.prefix(200))")
                #expect(!(response.string("message") ?? "").isEmpty)
            }
            #expect(try await db.scalar("SELECT string_agg(id::text, ',') FROM skipper.jobs") == "\(kept)")
            let allowed = try await client.send(.delete, "/jobs")
            #expect(allowed.headers[.allow] == "GET, POST")
            // A literal segment is routed before a parameter: GET /jobs/settlement is not GET /jobs/{id}.
            #expect(try await client.send(.get, "/jobs/settlement").headers[.allow] == "POST")
            let named = try await client.send(.post, "/jobs", json: #"{"kind": "sleep", "args": {"ms": "long"}}"#)
            #expect(named.string("message")?.hasPrefix("args.ms") == true)
            let fraction = try await client.send(.post, "/jobs", json: #"{"kind": "sleep", "args": {"ms": 1.5}}"#)
            #expect(fraction.string("message") == "args.ms: must be a whole number within range, not 1.5")
            let backwards = try await client.send(.post, "/jobs", json: #"{"kind": "settlement", "args": {"from": "2025-01-31", "to": "2025-01-01"}}"#)
            #expect(backwards.string("message") == "args.to: must not be before from (2025-01-31)")
        }
    }

    @Test func tokensGuardEverythingButHealthAndReady() async throws {
        try await withAPI(tokens: ["s3cret", "other"]) { _, client in
            #expect(try await client.send(.get, "/health").status == .ok)
            #expect(try await client.send(.get, "/ready").status == .ok)
            let missing = try await client.send(.get, "/jobs")
            #expect(missing.status == .unauthorized)
            #expect(missing.errorCode == "UNAUTHORIZED")
            #expect(try await client.send(.get, "/jobs", headers: [.authorization: "Bearer s3cre"]).status == .unauthorized)
            #expect(try await client.send(.get, "/metrics", headers: [.authorization: "Basic s3cret"]).status == .unauthorized)
            #expect(try await client.send(.get, "/jobs", headers: [.authorization: "Bearer s3cret"]).status == .ok)
            #expect(try await client.send(.get, "/jobs", headers: [.authorization: "Bearer other"]).status == .ok)
            let submitted = try await client.send(.post, "/jobs", json: #"{"kind": "noop"}"#, headers: [.authorization: "Bearer other"])
            #expect(submitted.status == .accepted)
        }
        // Without tokens the server binds loopback only.
        #expect(try SkipperConfig(environment: ["DATABASE_URL": "postgres://x@h/d"]).host == "127.0.0.1")
        #expect(try SkipperConfig(environment: ["DATABASE_URL": "postgres://x@h/d", "API_TOKENS": "t"]).host == "0.0.0.0")
        #expect(AuthMiddleware.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!AuthMiddleware.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!AuthMiddleware.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
    }

    @Test func metricsCountRequestsAndReadTheQueueDepth() async throws {
        try await withAPI { _, client in
            for _ in 0..<3 { _ = try await client.send(.post, "/jobs", json: #"{"kind": "noop", "queue": "mail"}"#) }
            _ = try await client.send(.get, "/jobs/424242")
            let metrics = try await client.send(.get, "/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.text.contains(#"skipper_http_requests_total{method="POST",route="/jobs",status="202"} 3"#), "\(metrics.text)")
            #expect(metrics.text.contains(#"skipper_http_requests_total{method="GET",route="/jobs/{id}",status="404"} 1"#))
            #expect(metrics.text.contains(#"skipper_http_request_duration_seconds_bucket{method="POST",route="/jobs",le="+Inf"} 3"#))
            #expect(metrics.text.contains(#"skipper_jobs{queue="mail",status="QUEUED"} 3"#))
        }
    }

    /// A page stops at its byte budget and hands out its cursor: 1,000 jobs of megabytes of arguments never make
    /// one giant response, and following the cursor still reaches every job.
    @Test func aPageOfHugeJobsStopsAtItsByteBudget() async throws {
        try await withAPI { db, client in
            _ = try await db.query(
                "INSERT INTO skipper.jobs (kind, args) SELECT 'noop', jsonb_build_object('blob', repeat('x', 1500000)) FROM generate_series(1, 7)")
            var seen = 0
            var after: String?
            var pages = 0
            repeat {
                let page = try await client.send(.get, "/jobs?limit=1000" + (after.map { "&after=\($0)" } ?? ""))
                #expect(page.status == .ok)
                #expect(page.text.utf8.count < 6 << 20, "a page of \(page.text.utf8.count) bytes")
                seen += (page.json["jobs"] as? [Any])?.count ?? 0
                after = page.json["next"] as? String
                pages += 1
            } while after != nil && pages < 20
            #expect(seen == 7)
            #expect(pages >= 3)
        }
    }

    /// Event streams are capped per process: beyond SSE_MAX_STREAMS a follower gets 503 with Retry-After, and a slot
    /// frees when a stream ends.
    @Test func eventStreamsAreCapped() async throws {
        try await withAPI(configure: { $0.maxEventStreams = 2 }) { db, client in
            let first = try #require(try await client.send(.post, "/jobs", json: #"{"kind": "sleep", "args": {"ms": 1}, "run_at": "2099-01-01T00:00:00Z"}"#).int("job_id"))
            // Each follower on a connection of its own (the test client has one connection).
            let port = try #require(client.port)
            let followers = (0..<2).map { _ in Task { try await httpGet("http://127.0.0.1:\(port)/jobs/\(first)/events") } }
            #expect(try await eventually(timeout: .seconds(10)) {
                try await client.send(.get, "/metrics").text.contains("skipper_event_streams 2\n")
            })
            let refused = try await client.send(.get, "/jobs/\(first)/events")
            #expect(refused.status == .serviceUnavailable && refused.errorCode == "TOO_MANY_STREAMS", "\(refused.text)")
            #expect(refused.headers[.retryAfter] == "5")
            // Cancelling the job ends both streams with its last state.
            #expect(try await client.send(.post, "/jobs/\(first)/cancel").status == .accepted)
            for follower in followers {
                let (status, text) = try await follower.value
                #expect(status == 200 && text.contains(#""status":"CANCELLED""#) && text.hasSuffix("event: end\ndata: {}\n\n"), "\(text)")
            }
            let done = try #require(try await client.send(.post, "/jobs", json: #"{"kind": "noop"}"#).int("job_id"))
            _ = try await db.query("UPDATE skipper.jobs SET status = 'COMPLETED', finished_at = now() WHERE id = \(done)")
            #expect(try await client.send(.get, "/jobs/\(done)/events").status == .ok)
        }
    }
}
