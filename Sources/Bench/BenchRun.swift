import Foundation
import Logging
import PostgresNIO
import Skipper

/// The measurements, in order. Each drain starts from an emptied, vacuumed table.
struct BenchRun {
    let client: PostgresClient
    let skipper: SkipperClient
    let url: String
    let logger: Logger
    let jobs = 100_000
    /// Claim batch of the raw loop and of the runners (WORKERS = CLAIM_BATCH), so both take the same batches.
    let batch = 100

    /// BENCH_PHASES=enqueue,drain,latency,cancel,http,settlement (default: all).
    let phases = Set((ProcessInfo.processInfo.environment["BENCH_PHASES"] ?? "enqueue,drain,latency,cancel,http,settlement").split(separator: ",").map(String.init))

    func all() async throws -> Report {
        var report = Report()
        report.postgres = try await self.scalarText("SELECT split_part(version(), ' on ', 1)")
        let store = JobStore(client: self.client, logger: self.logger)
        let skipper = self.skipper

        // 1. Bulk enqueue: one statement of 100,000 jobs, against the bare INSERT of the same rows.
        if self.phases.contains("enqueue") {
        try await self.reset()
        let raw = try await self.timed { try await self.exec("INSERT INTO skipper.jobs (kind, args) SELECT 'noop', '{}'::jsonb FROM generate_series(1, \(Int64(self.jobs)))") }
        try await self.reset()
        let newJobs = (0..<self.jobs).map { _ in NewJob(kind: "noop") }
        let bulk = try await self.timed { _ = try await skipper.enqueueMany(newJobs) }
        report.measurements.append(Measurement(name: "bulk enqueue of 100,000 noop jobs", value: Double(self.jobs) / bulk, unit: "jobs/s", baseline: "INSERT … SELECT generate_series", baselineValue: Double(self.jobs) / raw))
        Swift.print("bulk enqueue: \(Int(Double(self.jobs) / bulk)) jobs/s (raw \(Int(Double(self.jobs) / raw)))")
        }

        // 2. The raw-SQL limit: the claim and complete statements alone, in 1 and 2 loops.
        if self.phases.contains("drain") {
        var rawRates: [Int: Double] = [:]
        for loops in [1, 2] {
            try await self.seed()
            let seconds = try await self.timed {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for loop in 0..<loops {
                        group.addTask {
                            while true {
                                let claimed = try await store.claim(queues: ["default"], kinds: ["noop"], runnerID: "raw-\(loop)", limit: self.batch)
                                if claimed.isEmpty { return }
                                _ = try await store.finish(claimed.map { Finished(claim: $0.claim, outcome: .completed(result: nil)) }, runnerID: "raw-\(loop)")
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            rawRates[loops] = Double(self.jobs) / seconds
            Swift.print("raw claim+complete, \(loops) loop(s): \(Int(rawRates[loops]!)) jobs/s")
        }

        // 3. Drain by real runner processes.
        for runners in [1, 2] {
            try await self.seed()
            try await Runners.with(runners, url: self.url, environment: ["WORKERS": "\(2 * self.batch)", "CLAIM_BATCH": "\(self.batch)"]) { _ in
                try await self.waitUntil(timeout: 600) { try await self.drained() }
            }
            let seconds = try await self.scalarDouble("SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 FROM skipper.jobs")
            let rate = Double(self.jobs) / seconds
            report.measurements.append(Measurement(name: "drain 100,000 noop, \(runners) runner process\(runners == 1 ? "" : "es")", value: rate, unit: "jobs/s", baseline: "claim+complete SQL, \(runners) loop\(runners == 1 ? "" : "s")", baselineValue: rawRates[runners]))
            Swift.print("drain with \(runners) runner(s): \(Int(rate)) jobs/s")
        }
        }

        // 4. Enqueue-to-start latency at a steady 200 jobs/s, idle runners waiting on LISTEN.
        if self.phases.contains("latency") {
            try await self.reset()
            try await Runners.with(2, url: self.url, environment: [:]) { _ in
                try await self.waitUntil(timeout: 30) { try await self.count("SELECT count(*) FROM skipper.runners") == 2 }
                try await Task.sleep(for: .milliseconds(500))
                let start = ContinuousClock.now
                for i in 0..<2000 {
                    try await skipper.enqueue(kind: "noop")
                    let next = start + .milliseconds(5 * (i + 1))
                    if next > .now { try await Task.sleep(until: next) }
                }
                try await self.waitUntil(timeout: 60) { try await self.drained() }
            }
            let (p50, p99) = try await self.percentiles("started_at - created_at")
            report.measurements.append(Measurement(name: "enqueue-to-start latency p50 (200 jobs/s)", value: p50, unit: "ms"))
            report.measurements.append(Measurement(name: "enqueue-to-start latency p99 (200 jobs/s)", value: p99, unit: "ms"))
            Swift.print("enqueue-to-start: p50 \(p50) ms, p99 \(p99) ms")
        }

        // 5. Cancel latency of RUNNING jobs: from the cancel request to CANCELLED, by the server's clock.
        if self.phases.contains("cancel") {
            try await self.reset()
            try await Runners.with(2, url: self.url, environment: ["WORKERS": "50"]) { _ in
                let sleepers = (0..<100).map { _ in NewJob(kind: "sleep", args: #"{"ms": 120000}"#) }
                let ids = try await skipper.enqueueMany(sleepers)
                try await self.waitUntil(timeout: 30) { try await self.count("SELECT count(*) FROM skipper.jobs WHERE status = 'RUNNING'") == 100 }
                for id in ids {
                    _ = try await skipper.cancel(id: id)
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await self.waitUntil(timeout: 30) { try await self.count("SELECT count(*) FROM skipper.jobs WHERE status = 'CANCELLED'") == 100 }
            }
            let (p50, p99) = try await self.percentiles("finished_at - cancel_requested_at")
            report.measurements.append(Measurement(name: "cancel latency of RUNNING jobs p50", value: p50, unit: "ms"))
            report.measurements.append(Measurement(name: "cancel latency of RUNNING jobs p99", value: p99, unit: "ms"))
            Swift.print("cancel: p50 \(p50) ms, p99 \(p99) ms")
        }
        if self.phases.contains("http") { try await self.http(into: &report) }
        if self.phases.contains("settlement") { try await self.settlement(into: &report) }
        return report
    }

    // MARK: - Helpers

    func reset() async throws {
        try await self.exec("TRUNCATE skipper.jobs, skipper.runners, skipper.job_artifacts")
        try await self.exec("VACUUM ANALYZE skipper.jobs")
    }

    func seed() async throws {
        try await self.reset()
        try await self.exec("INSERT INTO skipper.jobs (kind, args) SELECT 'noop', '{}'::jsonb FROM generate_series(1, \(Int64(self.jobs)))")
        try await self.exec("VACUUM ANALYZE skipper.jobs")
    }

    func percentiles(_ interval: String) async throws -> (Double, Double) {
        let rows = try await self.client.query(
            PostgresQuery(unsafeSQL: """
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM \(interval)) * 1000)::float8,
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM \(interval)) * 1000)::float8
                FROM skipper.jobs
                """), logger: self.logger)
        for try await (p50, p99) in rows.decode((Double, Double).self) { return ((p50 * 10).rounded() / 10, (p99 * 10).rounded() / 10) }
        return (0, 0)
    }

    func timed(_ body: () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    func waitUntil(timeout seconds: Int, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw BenchError("timed out after \(seconds) s") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// True when no job is QUEUED or RUNNING. Both partial indexes answer it, so polling costs the runners nothing.
    func drained() async throws -> Bool {
        try await self.count(
            "SELECT (EXISTS (SELECT 1 FROM skipper.jobs WHERE status = 'QUEUED') OR EXISTS (SELECT 1 FROM skipper.jobs WHERE status = 'RUNNING'))::int4::int8"
        ) == 0
    }

    func exec(_ sql: PostgresQuery) async throws { try await self.client.query(sql, logger: self.logger) }

    func count(_ sql: PostgresQuery) async throws -> Int64 {
        for try await value in try await self.client.query(sql, logger: self.logger).decode(Int64.self) { return value }
        return 0
    }

    func scalarDouble(_ sql: PostgresQuery) async throws -> Double {
        for try await value in try await self.client.query(sql, logger: self.logger).decode(Double.self) { return value }
        return 0
    }

    func scalarText(_ sql: PostgresQuery) async throws -> String {
        for try await value in try await self.client.query(sql, logger: self.logger).decode(String.self) { return value }
        return ""
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
