import Foundation
import Logging
import PostgresNIO
import Skipper

/// The measurements, in order. Every figure is compared with a baseline measured in the same run on the same
/// PostgreSQL: peers that contain no Skipper code (PGQueuer, the minimal SKIP LOCKED cycle), the raw SQL a
/// feature needs, or Skipper itself in easier conditions (a shallow backlog, an empty table).
struct BenchRun {
    let client: PostgresClient
    let skipper: SkipperClient
    let url: String
    let logger: Logger

    /// BENCH_PHASES=enqueue,peers,queue,limits,latency,cancel,reader,history,http,settlement (default: all).
    let phases = Set(
        (ProcessInfo.processInfo.environment["BENCH_PHASES"] ?? "enqueue,peers,queue,limits,latency,cancel,reader,history,http,settlement")
            .split(separator: ",").map(String.init))

    func all() async throws -> Report {
        var report = Report()
        report.postgres = try await self.scalarText("SELECT split_part(version(), ' on ', 1)")

        // Bulk enqueue: one statement of 100,000 jobs, against the bare INSERT of the same rows.
        if self.phases.contains("enqueue") {
            let jobs = 100_000
            try await self.reset()
            let raw = try await self.timed { try await self.exec("INSERT INTO skipper.jobs (kind, args) SELECT 'noop', '{}'::jsonb FROM generate_series(1, 100000)") }
            try await self.reset()
            let newJobs = (0..<jobs).map { _ in NewJob(kind: "noop") }
            let bulk = try await self.timed { _ = try await self.skipper.enqueueMany(newJobs) }
            report.add("bulk enqueue of 100,000 noop jobs", Double(jobs) / bulk, "jobs/s", "INSERT … SELECT generate_series", Double(jobs) / raw)
            Swift.print("bulk enqueue: \(Int(Double(jobs) / bulk)) jobs/s (raw \(Int(Double(jobs) / raw)))")
        }
        let peers = self.phases.contains("peers") ? try await self.peers() : Peers()
        if self.phases.contains("queue") { try await self.queue(into: &report, peers: peers) }
        if self.phases.contains("limits") { try await self.limits(into: &report) }
        if self.phases.contains("latency") { try await self.latency(into: &report, peers: peers) }
        if self.phases.contains("cancel") { try await self.cancel(into: &report) }
        if self.phases.contains("reader") { try await self.longReader(into: &report) }
        if self.phases.contains("history") {
            // The empty table's steady rate, then the same with 10,000,000 finished jobs.
            let empty = try await self.medianDrain(jobs: 50_000, runners: 2, steady: true).rate
            try await self.history(into: &report, emptyRate: empty)
        }
        if self.phases.contains("http") { try await self.http(into: &report) }
        if self.phases.contains("settlement") { try await self.settlement(into: &report) }
        return report
    }

    // MARK: - Helpers

    func reset() async throws {
        try await self.exec("TRUNCATE skipper.jobs, skipper.runners, skipper.job_artifacts, skipper.job_counts")
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
            """
            SELECT (EXISTS (SELECT 1 FROM skipper.jobs WHERE status = 'QUEUED' AND finished_at IS NULL)
                    OR EXISTS (SELECT 1 FROM skipper.jobs WHERE status = 'RUNNING' AND finished_at IS NULL))::int4::int8
            """
        ) == 0
    }

    func exec(_ sql: PostgresQuery) async throws { try await self.client.perform(sql, logger: self.logger) }

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
