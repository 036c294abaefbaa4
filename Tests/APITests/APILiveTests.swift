import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import Skipper
import Testing
import TestSupport

@testable import API

/// The API with real runner processes, a stopped database, and as a process of its own.
@Suite struct APILiveTests {
    @Test func eventsStreamProgressOfARunningJobAndEndWithIt() async throws {
        try await withAPI(kinds: []) { db, client in
            let runner = try ChildProcess.runner(url: db.url, environment: ["PROGRESS_INTERVAL": "200ms"])
            defer { runner.killNow() }
            // The runner registers its kinds; until then `sleep` is unknown.
            #expect(try await eventually { try await db.scalar("SELECT count(*) FROM skipper.kinds WHERE kind = 'sleep'") == "1" })
            let submitted = try await client.send(.post, "/jobs", json: #"{"kind": "sleep", "args": {"ms": 1500}}"#)
            let id = try #require(submitted.int("job_id"))
            let stream = try await client.execute(uri: "/jobs/\(id)/events", method: .get) { $0 }
            #expect(stream.status == .ok)
            #expect(stream.headers[.contentType] == "text/event-stream")
            let text = String(buffer: stream.body)
            let jobs = text.components(separatedBy: "\n\n").filter { $0.hasPrefix("event: job\ndata: ") }.compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.dropFirst("event: job\ndata: ".count).utf8)) as? [String: Any]
            }
            let progress = jobs.compactMap { ($0["progress"] as? NSNumber)?.doubleValue }
            #expect(progress.contains { $0 > 0 && $0 < 100 }, "\(text)")
            #expect(progress == progress.sorted(), "progress only grows: \(progress)")
            #expect(jobs.last?["status"] as? String == "COMPLETED")
            #expect(text.hasSuffix("event: end\ndata: {}\n\n"))
            await runner.stop()
        }
    }

    @Test func cancellingARunningJobOverHTTPStopsIt() async throws {
        try await withAPI(kinds: []) { db, client in
            let runner = try ChildProcess.runner(url: db.url)
            defer { runner.killNow() }
            #expect(try await eventually { try await db.scalar("SELECT count(*) FROM skipper.kinds WHERE kind = 'sleep'") == "1" })
            let id = try #require(try await client.send(
                .post, "/jobs", json: #"{"kind": "sleep", "args": {"ms": 60000}}"#, headers: [.requestID: "trace-cancel-7"]).int("job_id"))
            #expect(try await eventually { try await client.send(.get, "/jobs/\(id)").string("status") == "RUNNING" })
            let cancel = try await client.send(.post, "/jobs/\(id)/cancel")
            #expect(cancel.status == .accepted)
            #expect(cancel.json["cancel_requested_at"] is String)
            #expect(try await eventually(timeout: .seconds(2)) { try await client.send(.get, "/jobs/\(id)").string("status") == "CANCELLED" })
            // The runner's log line for the job carries the submitter's request id.
            #expect(try await eventually { runner.log.split(separator: "\n").contains { $0.contains("job cancelled") && $0.contains("request.id=trace-cancel-7") } }, "\(runner.log)")
            let retried = try await client.send(.post, "/jobs/\(id)/retry")
            #expect(retried.status == .accepted)
            #expect(try await eventually { try await client.send(.get, "/jobs/\(id)").string("status") == "RUNNING" })
            await runner.stop()
        }
    }

    @Test func readinessAndRequestsFollowTheDatabase() async throws {
        try await PrivateCluster.with { cluster in
            var config = try SkipperConfig(environment: [:])
            config.database = cluster.config
            config.port = 0
            let app = try await buildApplication(config: config, logger: Logger(label: "test"))
            try await TestServer.withConnection(to: cluster.config) { connection in
                _ = try await TestServer.rows(of: "INSERT INTO skipper.kinds (kind) VALUES ('noop')", on: connection)
            }
            try await app.test(.live) { client in
                #expect(try await client.send(.get, "/ready").status == .ok)
                #expect(try await client.send(.post, "/jobs", json: #"{"kind": "noop", "args": {"before": true}}"#).status == .accepted)
                try await cluster.stop()
                let start = ContinuousClock.now
                let ready = try await client.send(.get, "/ready")
                #expect(ready.status == .serviceUnavailable)
                #expect(ready.errorCode == "NOT_READY")
                let submit = try await client.send(.post, "/jobs", json: #"{"kind": "noop"}"#)
                #expect(submit.status == .serviceUnavailable)
                #expect(submit.errorCode == "DATABASE_UNAVAILABLE")
                #expect(ContinuousClock.now - start < .seconds(6), "each answer within the 2 s deadline")
                #expect(try await client.send(.get, "/health").status == .ok)
                try await cluster.start()
                #expect(try await eventually(timeout: .seconds(30)) { try await client.send(.get, "/ready").status == .ok })
                #expect(try await client.send(.get, "/jobs").status == .ok)
                // The submission that got its 503 was not written behind the client's back once the server returned.
                try await Task.sleep(for: .seconds(1))
                let stored = try await TestServer.withConnection(to: cluster.config) { connection in
                    try await TestServer.rows(of: "SELECT args::text FROM skipper.jobs", on: connection)
                }
                #expect(stored == [[#"{"before": true}"#]])
            }
        }
    }

    @Test func sigtermStopsAcceptingAndExitsCleanly() async throws {
        try await withTestDatabase { db in
            let port = Int.random(in: 20000..<40000)
            let api = try ChildProcess.skipper("skipper-api", url: db.url, environment: ["PORT": "\(port)"])
            #expect(try await eventually { (try? await httpStatus("http://127.0.0.1:\(port)/health")) == 200 })
            api.signal(SIGTERM)
            let status = await api.waitForExit(timeout: .seconds(10))
            #expect(status == 0, "\(api.log)")
            #expect((try? await httpStatus("http://127.0.0.1:\(port)/health")) == nil, "no longer accepting")
        }
    }

    /// Requests broken at the HTTP level get the API's JSON errors: a malformed chunk was a 500 (an error "of
    /// ours"), and `bearer` in lower case (the scheme's name is case-insensitive) was refused.
    @Test func malformedHTTPIsA400AndTheBearerSchemeIsCaseInsensitive() async throws {
        try await withTestDatabase { db in
            let port = Int.random(in: 20000..<40000)
            let api = try ChildProcess.skipper("skipper-api", url: db.url, environment: ["PORT": "\(port)", "API_TOKENS": "s3cret"])
            defer { api.killNow() }
            #expect(try await eventually { (try? await httpStatus("http://127.0.0.1:\(port)/health")) == 200 })
            let chunked = try rawHTTP(
                port: port,
                "POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n")
            #expect(chunked.hasPrefix("HTTP/1.1 400"), "\(chunked)")
            #expect(chunked.contains(#""error":"MALFORMED_REQUEST""#), "\(chunked)")
            let lower = try rawHTTP(port: port, "GET /jobs?limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: bearer s3cret\r\nConnection: close\r\n\r\n")
            #expect(lower.hasPrefix("HTTP/1.1 200"), "\(lower)")
            let wrong = try rawHTTP(port: port, "GET /jobs?limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: bearer nope\r\nConnection: close\r\n\r\n")
            #expect(wrong.hasPrefix("HTTP/1.1 401"), "\(wrong)")
            #expect(!api.log.contains("request failed"), "\(api.log)")
        }
    }

    /// An open event stream does not hold a stopping server up: it closes (without `end`, the job has not finished)
    /// and the process exits, rather than waiting for a job that may run for days.
    @Test func sigtermEndsOpenEventStreams() async throws {
        try await withTestDatabase { db in
            let id = try #require(try await db.scalar("INSERT INTO skipper.jobs (kind, run_at) VALUES ('noop', now() + interval '1 day') RETURNING id"))
            let port = Int.random(in: 20000..<40000)
            let api = try ChildProcess.skipper("skipper-api", url: db.url, environment: ["PORT": "\(port)"])
            #expect(try await eventually { (try? await httpStatus("http://127.0.0.1:\(port)/health")) == 200 })
            let follower = Task { try await httpGet("http://127.0.0.1:\(port)/jobs/\(id)/events", timeout: 30) }
            #expect(try await eventually { (try? await httpGet("http://127.0.0.1:\(port)/metrics").text.contains("skipper_event_streams 1\n")) == true })
            api.signal(SIGTERM)
            let status = await api.waitForExit(timeout: .seconds(10))
            #expect(status == 0, "\(api.log)")
            let (code, text) = try await follower.value
            #expect(code == 200 && text.hasPrefix("event: job\n") && !text.contains("event: end"), "\(text)")
            if status == nil { api.signal(SIGKILL) }
        }
    }

    /// A statement already sent is bounded too: with skipper.jobs locked by another session, requests answer 503
    /// within DB_TIMEOUT (plus a margin for this loaded machine), not when the lock goes, and once it goes the pool's
    /// connections (freed by the server's statement_timeout) serve again.
    @Test func aLockedTableAnswers503WithinTheDeadlineAndThePoolRecovers() async throws {
        try await withAPI(databaseTimeout: .seconds(1)) { db, client in
            let id = try #require(try await db.scalar("INSERT INTO skipper.jobs (kind) VALUES ('noop') RETURNING id"))
            let locker = Task {
                try await db.withClient(maxConnections: 1) { postgres in
                    try await postgres.withTransaction(logger: Logger(label: "test")) { connection in
                        try await connection.query("LOCK TABLE skipper.jobs IN ACCESS EXCLUSIVE MODE", logger: Logger(label: "test"))
                        try await Task.sleep(for: .seconds(6))
                    }
                }
            }
            #expect(try await eventually(timeout: .seconds(10)) {
                try await db.scalar("SELECT count(*) FROM pg_locks WHERE relation = 'skipper.jobs'::regclass AND mode = 'AccessExclusiveLock' AND granted") == "1"
            })
            for uri in ["/jobs/\(id)", "/jobs?status=QUEUED", "/jobs/\(id)"] {
                let start = ContinuousClock.now
                let response = try await client.send(.get, uri)
                let elapsed = ContinuousClock.now - start
                #expect(response.status == .serviceUnavailable && response.errorCode == "DATABASE_UNAVAILABLE", "\(response.text)")
                #expect(elapsed < .milliseconds(2500), "answered after \(elapsed)")
            }
            try await locker.value
            #expect(try await eventually(timeout: .seconds(10)) { try await client.send(.get, "/jobs/\(id)").status == .ok })
            for _ in 0..<10 {
                #expect(try await client.send(.get, "/jobs/\(id)").status == .ok)
            }
        }
    }
}

/// The status of a GET, or nil when nothing answers within 2 s.
func httpStatus(_ url: String) async throws -> Int? {
    var request = URLRequest(url: URL(string: url)!)
    request.timeoutInterval = 2
    guard let (_, response) = try? await URLSession.shared.data(for: request) else { return nil }
    return (response as? HTTPURLResponse)?.statusCode
}

/// A GET on a connection of its own: the status and the whole body (an event stream is read to its end).
func httpGet(_ url: String, timeout: TimeInterval = 60) async throws -> (status: Int, text: String) {
    var request = URLRequest(url: URL(string: url)!)
    request.timeoutInterval = timeout
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

/// Sends `request` as is to 127.0.0.1:`port` and reads until the server closes or 5 s pass: for requests no HTTP
/// client would send.
func rawHTTP(port: Int, _ request: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    let bytes = Array(request.utf8)
    guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw POSIXError(.EIO) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        received += buffer[0..<count]
        // One response is enough: stop at the end of its body when the server keeps the connection open.
        if let text = String(bytes: received, encoding: .utf8), let headEnd = text.range(of: "\r\n\r\n"),
            let length = text[..<headEnd.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") })
                .flatMap({ Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }),
            text.utf8.count - text.utf8.distance(from: text.startIndex, to: headEnd.upperBound) >= length
        {
            break
        }
    }
    return String(decoding: received, as: UTF8.self)
}
