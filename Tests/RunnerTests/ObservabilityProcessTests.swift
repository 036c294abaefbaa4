import Foundation
import Testing
import TestSupport

/// What a runner process tells its operators: Prometheus metrics on METRICS_PORT and JSON log lines.
@Suite struct ObservabilityProcessTests {
    /// The value of the sample `name{labels}` (labels in the order the exporter writes them) in Prometheus text.
    func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1).split(separator: " ")[0])
        }
        return nil
    }

    @Test func aRunnerExportsWhatItDidAsPrometheusMetricsAndLogsJSON() async throws {
        try await withTestDatabase { db in
            try await db.query("INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, 30)")
            try await db.query("INSERT INTO skipper.jobs (kind, max_attempts) VALUES ('fail', 1), ('fail', 3)")
            try await db.query(#"INSERT INTO skipper.jobs (kind, args) VALUES ('sleep', '{"ms": 30000}')"#)
            let port = freePort()
            let runner = try ChildProcess.runner(
                url: db.url, environment: ["METRICS_PORT": "\(port)", "LOG_FORMAT": "json", "WORKERS": "4", "RESCUE_AFTER": "3s"])
            defer { runner.killNow() }
            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE kind = 'noop' AND status = 'COMPLETED'") == "30"
            }, "\(runner.log)")
            // The finished attempts, as the database has them, once the gauges' next sample (every second) is in.
            var text = ""
            let counted = try await eventually(timeout: .seconds(10), every: .milliseconds(200)) {
                text = (try? await http("GET", "http://127.0.0.1:\(port)/metrics").body) ?? ""
                return self.sample(text, #"skipper_jobs_finished_total{kind="noop",outcome="completed"}"#) == 30
                    && self.sample(text, #"skipper_running_jobs"#) == 1
            }
            #expect(counted, "\(text)")
            #expect(self.sample(text, #"skipper_jobs_finished_total{kind="fail",outcome="failed"}"#) == 1, "\(text)")
            #expect((self.sample(text, #"skipper_jobs_finished_total{kind="fail",outcome="retried"}"#) ?? 0) >= 1, "\(text)")
            // Histograms: run time and lag per kind (every noop in some bucket), claim and completer batch sizes.
            #expect(self.sample(text, #"skipper_job_duration_seconds_count{kind="noop"}"#) == 30, "\(text)")
            #expect(self.sample(text, #"skipper_job_duration_seconds_bucket{kind="noop",le="+Inf"}"#) == 30, "\(text)")
            #expect(self.sample(text, #"skipper_job_lag_seconds_count{kind="noop"}"#) == 30, "\(text)")
            let claimed = try #require(self.sample(text, "skipper_claimed_jobs_total"), "\(text)")
            #expect(claimed >= 33, "\(text)")
            #expect(self.sample(text, "skipper_claim_size_sum") == claimed, "\(text)")
            #expect((self.sample(text, "skipper_claims_total") ?? 0) >= 1)
            #expect((self.sample(text, "skipper_completer_batch_size_sum") ?? 0) >= 31, "\(text)")
            #expect((self.sample(text, "skipper_completer_write_seconds_count") ?? 0) >= 1, "\(text)")
            let leaseAge = try #require(self.sample(text, "skipper_lease_age_seconds"), "\(text)")
            #expect(leaseAge >= 0 && leaseAge < 3, "\(text)")
            // Nothing but the runner's own series is served, and a stopped runner stops serving.
            #expect(try await http("GET", "http://127.0.0.1:\(port)/nothing").status == 404)
            await runner.stop()
            #expect((try? await http("GET", "http://127.0.0.1:\(port)/metrics", timeout: 2)) == nil)

            // Every line of its log is a JSON object with a time, a level and a message; job lines name the job and runner.
            let lines = runner.stderr.split(separator: "\n")
            #expect(!lines.isEmpty)
            var sawJob = false
            for line in lines {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object != nil, "not JSON: \(line)")
                guard let object else { continue }
                #expect(object["ts"] is String && object["level"] is String && object["msg"] is String, "\(line)")
                if object["msg"] as? String == "job failed" {
                    sawJob = object["job.id"] is String && object["job.kind"] as? String == "fail" && object["runner.id"] is String
                }
            }
            #expect(sawJob, "\(runner.stderr)")
        }
    }

    @Test func aBadMetricsPortOrLogFormatStopsTheRunnerAtOnce() async throws {
        try await withTestDatabase { db in
            // The variable named in each message is the last of its case. An exporter this build does not have
            // (swift-otel's gRPC one would stop the process with a crash) is refused at start like any bad value.
            let cases: [[(String, String)]] = [
                [("METRICS_PORT", "99999")], [("LOG_FORMAT", "xml")], [("OTEL_TRACES_EXPORTER", "zipkin")],
                [("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                [("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_TRACES_SAMPLER", "jaeger_remote")],
                [("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0")],
                // swift-otel reserves the whole queue at start: a billion spans' worth aborted the process.
                [("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_BSP_MAX_QUEUE_SIZE", "1000000000")],
                // Settings the exporter cannot use lost every span without a word.
                [("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")],
                [("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key:s3cret")],
                // An address the runner cannot listen on: the message names the variables (after the runner started).
                [("METRICS_PORT", "\(freePort())"), ("METRICS_HOST", "192.0.2.1")],
            ]
            for settings in cases {
                let env = ChildProcess.environment(url: db.url, Dictionary(uniqueKeysWithValues: settings))
                let result = try await runProcess(Executables.path("skipper-runner"), [], environment: env)
                #expect(result.status == 1, "\(settings): \(result.stderr)")
                #expect(result.stderr.contains(settings.last!.0), "\(result.stderr)")
                #expect(!result.stderr.contains("crashed"), "\(result.stderr)")
                // A header's value may be a credential: never in the message.
                #expect(!result.stderr.contains("s3cret"), "\(result.stderr)")
            }
        }
    }

    /// Connections held open to the metrics port (a half-sent request each, 300 of them) cost the runner no more than
    /// 32 descriptors: it goes on claiming and finishing, and once they are gone (or idle 10 s) it answers scrapes.
    @Test func connectionsHeldOpenToTheMetricsPortDoNotStarveTheRunner() async throws {
        try await withTestDatabase { db in
            let port = freePort()
            let runner = try ChildProcess.runner(url: db.url, environment: ["METRICS_PORT": "\(port)", "WORKERS": "4"])
            defer { runner.killNow() }
            #expect(try await eventually(timeout: .seconds(30)) { (try? await http("GET", "http://127.0.0.1:\(port)/metrics").status) == 200 }, "\(runner.log)")
            let pid = try #require(Int32(try await db.scalar("SELECT pid FROM skipper.runners") ?? ""))
            let holder = try ChildProcess(
                "/usr/bin/python3",
                [
                    "-c",
                    """
                    import socket, sys, time
                    held = []
                    for _ in range(300):
                        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                        s.sendall(b"GET /metr")
                        held.append(s)
                    print("holding", flush=True)
                    time.sleep(60)
                    """,
                    "\(port)",
                ])
            defer { holder.killNow() }
            #expect(try await eventually(timeout: .seconds(20)) { holder.stdout.contains("holding") }, "\(holder.log)")
            let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
            #expect(descriptors < 150, "the runner holds \(descriptors) descriptors")
            try await db.query("INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, 50)")
            #expect(try await eventually(timeout: .seconds(20)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'") == "50"
            }, "\(runner.log)")
            holder.killNow()
            #expect(try await eventually(timeout: .seconds(15)) { (try? await http("GET", "http://127.0.0.1:\(port)/metrics").status) == 200 }, "\(runner.log)")
        }
    }

    /// A log reader that goes away (a closed pipe) does not kill the runner: it goes on running jobs, and stops
    /// gracefully when asked (before, the next log line killed it with SIGPIPE, like kill -9).
    @Test func aRunnerOutlivesTheReaderOfItsLog() async throws {
        try await withTestDatabase { db in
            let env = ChildProcess.environment(url: db.url, ["WORKERS": "4"])
            // The runner's output into `head`, which leaves after 100 bytes.
            let pipeline = try ChildProcess(
                "/bin/sh", ["-c", #"exec "$0" 2>&1 | head -c 100 > /dev/null"#, Executables.path("skipper-runner")], environment: env)
            defer { pipeline.killNow() }
            #expect(try await eventually(timeout: .seconds(30)) { try await db.scalar("SELECT count(*) FROM skipper.runners") == "1" })
            let pid = try #require(Int32(try await db.scalar("SELECT pid FROM skipper.runners") ?? ""))
            defer { kill(pid, SIGKILL) }
            // Each failure is a log line, written to a pipe no one reads any more.
            try await db.query("INSERT INTO skipper.jobs (kind, max_attempts) SELECT 'fail', 1 FROM generate_series(1, 20)")
            try await db.query("INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, 20)")
            #expect(try await eventually(timeout: .seconds(30)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status IN ('COMPLETED', 'FAILED')") == "40"
            })
            #expect(kill(pid, 0) == 0, "the runner died")
            kill(pid, SIGTERM)
            #expect(try await eventually(timeout: .seconds(20)) { try await db.scalar("SELECT count(*) FROM skipper.runners") == "0" })
        }
    }
}
