import Foundation
import Testing
import TestSupport

/// Trace context from the request to the job: a `traceparent` sent to `POST /jobs` is kept in the job's meta, and
/// the runner that executes the job continues that trace, in the span it exports over OTLP and in its log lines.
@Suite struct TraceProcessTests {
    /// A stand-in OpenTelemetry collector: an HTTP server on 127.0.0.1 that answers every OTLP/HTTP export with
    /// an empty success and writes each request's path and body, one per line, to its standard output.
    static let collector = #"""
        import http.server, sys
        class Collector(http.server.BaseHTTPRequestHandler):
            def body(self):
                if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
                    out = b''
                    while True:
                        size = int(self.rfile.readline().strip().split(b';')[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get('Content-Length', '0')))
            def do_POST(self):
                body = self.body()
                sys.stdout.write(self.path + ' ' + body.decode('utf-8', 'replace').replace('\n', ' ') + '\n')
                sys.stdout.flush()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', '2')
                self.end_headers()
                self.wfile.write(b'{}')
            def log_message(self, *args):
                pass
        http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), Collector).serve_forever()
        """#

    /// The spans in the collector's output (OTLP/JSON), with ids as hex whichever way the exporter encoded them.
    func spans(in output: String) -> [[String: Any]] {
        var spans: [[String: Any]] = []
        for line in output.split(separator: "\n") where line.hasPrefix("/v1/traces ") {
            let json = try? JSONSerialization.jsonObject(with: Data(line.dropFirst("/v1/traces ".count).utf8)) as? [String: Any]
            for resource in json?["resourceSpans"] as? [[String: Any]] ?? [] {
                for scope in resource["scopeSpans"] as? [[String: Any]] ?? [] {
                    for var span in scope["spans"] as? [[String: Any]] ?? [] {
                        for key in ["traceId", "spanId", "parentSpanId"] { span[key] = (span[key] as? String).map(Self.hex) }
                        span["service"] = ((resource["resource"] as? [String: Any])?["attributes"] as? [[String: Any]])?
                            .first { $0["key"] as? String == "service.name" }
                            .flatMap { ($0["value"] as? [String: Any])?["stringValue"] as? String }
                        spans.append(span)
                    }
                }
            }
        }
        return spans
    }

    /// An id as lowercase hex: OTLP/JSON writes hex, a protobuf JSON mapping base64.
    static func hex(_ id: String) -> String {
        if id.count == 32 || id.count == 16, id.allSatisfy(\.isHexDigit) { return id.lowercased() }
        guard let bytes = Data(base64Encoded: id) else { return id }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    @Test func aSubmittersTraceIsContinuedByTheRunnerInItsSpanAndLogLines() async throws {
        try await withTestDatabase { db in
            let collectorPort = freePort()
            let collector = try ChildProcess("/usr/bin/python3", ["-c", Self.collector, "\(collectorPort)"])
            defer { collector.killNow() }
            // Python's server answers a GET with 501: it listens.
            #expect(try await eventually(timeout: .seconds(10)) {
                (try? await http("GET", "http://127.0.0.1:\(collectorPort)/", timeout: 2).status) == 501
            }, "\(collector.log)")
            let runner = try ChildProcess.runner(
                url: db.url,
                environment: [
                    "LOG_FORMAT": "json", "LOG_LEVEL": "debug", "OTEL_TRACES_EXPORTER": "otlp",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(collectorPort)",
                    "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": "runner-under-test",
                    // OpenTelemetry's default, which swift-otel alone would stop the process on (it has no baggage).
                    "OTEL_PROPAGATORS": "tracecontext,baggage",
                ])
            defer { runner.killNow() }
            let (api, base) = try await startAPI(url: db.url)
            defer { api.killNow() }
            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) FROM skipper.runners") == "1"
            }, "\(runner.log)")

            // The submitter's trace: its id and its span's, as a W3C traceparent header (and a tracestate).
            let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
            let submitterSpan = "00f067aa0ba902b7"
            let traced = try await http(
                "POST", "\(base)/jobs", #"{"kind": "fail", "max_attempts": 1}"#,
                headers: ["traceparent": "00-\(traceID)-\(submitterSpan)-01", "tracestate": "vendor=opaque"])
            #expect(traced.status == 202, "\(traced.body)")
            let tracedID = try #require(number("job_id", in: traced.body))
            let meta = try #require(try await db.scalar("SELECT meta::text FROM skipper.jobs WHERE id = \(tracedID)"))
            #expect(meta.contains(#""traceparent": "00-\#(traceID)-\#(submitterSpan)-01""#), "\(meta)")
            #expect(meta.contains(#""tracestate": "vendor=opaque""#), "\(meta)")

            // A tracestate that does not parse is dropped; the traceparent it came with is kept.
            let badState = try await http(
                "POST", "\(base)/jobs", #"{"kind": "noop"}"#,
                headers: ["traceparent": "00-\(traceID)-\(submitterSpan)-01", "tracestate": "Vendor=upper-case-key"])
            let badStateID = try #require(number("job_id", in: badState.body))
            #expect(try await db.scalar("SELECT meta->>'traceparent' FROM skipper.jobs WHERE id = \(badStateID)") == "00-\(traceID)-\(submitterSpan)-01")
            #expect(try await db.scalar("SELECT meta ? 'tracestate' FROM skipper.jobs WHERE id = \(badStateID)") == "false")

            // Without one (or with one that is not valid), the API starts a trace: a new, valid traceparent.
            var started: [String] = []
            for header in [nil, "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "junk"] {
                let response = try await http("POST", "\(base)/jobs", #"{"kind": "noop"}"#, headers: header.map { ["traceparent": $0] } ?? [:])
                let id = try #require(number("job_id", in: response.body))
                let value = try #require(try await db.scalar("SELECT meta->>'traceparent' FROM skipper.jobs WHERE id = \(id)"))
                #expect(value.range(of: "^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", options: .regularExpression) != nil, "\(value)")
                #expect(!value.contains("-00000000000000000000000000000000-"), "\(value)")
                #expect(try await db.scalar("SELECT meta ? 'tracestate' FROM skipper.jobs WHERE id = \(id)") == "false")
                started.append(value)
            }
            #expect(Set(started).count == 3, "each submission starts its own trace: \(started)")

            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE finished_at IS NOT NULL") == "5"
            }, "\(runner.log)")

            // The runner's span for the job: in the submitter's trace, a child of the submitter's span, a consumer
            // span that failed as the job did.
            // Spans are exported in batches (every 100 ms here): wait for all four jobs' traces.
            var span: [String: Any]?
            var exported: Set<String> = []
            #expect(try await eventually(timeout: .seconds(20), every: .milliseconds(200)) {
                let spans = self.spans(in: collector.stdout)
                exported = Set(spans.compactMap { $0["traceId"] as? String })
                span = spans.first { $0["traceId"] as? String == traceID && $0["name"] as? String == "fail" }
                return exported.isSuperset(of: [traceID] + started.map { String($0.dropFirst(3).prefix(32)) })
            }, "collector got: \(collector.stdout.suffix(3000)); runner: \(runner.log.suffix(3000))")
            #expect(span != nil)
            if let span {
                #expect(span["parentSpanId"] as? String == submitterSpan, "\(span)")
                #expect(span["name"] as? String == "fail", "\(span)")
                #expect(span["kind"] as? String == "SPAN_KIND_CONSUMER" || span["kind"] as? Int == 5, "\(span)")
                #expect(((span["status"] as? [String: Any])?["code"]).map { "\($0)" }?.contains("ERROR") == true
                        || (span["status"] as? [String: Any])?["code"] as? Int == 2, "\(span)")
                #expect(span["service"] as? String == "runner-under-test", "\(span)")
                let attributes = (span["attributes"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
                #expect(attributes.contains("messaging.message.id") && attributes.contains("messaging.destination.name"), "\(span)")
            }
            // The jobs the API started a trace for have spans in their own traces, children of the span it made up.
            for value in started {
                let parts = value.split(separator: "-")
                #expect(self.spans(in: collector.stdout).contains {
                    $0["traceId"] as? String == String(parts[1]) && $0["parentSpanId"] as? String == String(parts[2]) && $0["name"] as? String == "noop"
                }, "\(value)")
            }

            // The job's log lines carry the submitter's trace id.
            await runner.stop()
            let lines = runner.stderr.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            // The exporter's own messages are logged as the runner's are: every line is JSON.
            #expect(lines.count == runner.stderr.split(separator: "\n").count, "\(runner.stderr.suffix(3000))")
            let jobLines = lines.filter { $0["job.id"] as? String == "\(tracedID)" }
            #expect(jobLines.contains { $0["msg"] as? String == "job failed" }, "\(runner.stderr.suffix(3000))")
            #expect(!jobLines.isEmpty && jobLines.allSatisfy { $0["trace_id"] as? String == traceID }, "\(jobLines)")
        }
    }
}
