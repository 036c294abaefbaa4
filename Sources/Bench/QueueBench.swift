import Foundation
import Logging
import PostgresNIO
import Skipper
import TestSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The queue against its peers and against itself at depth: drain rates, WAL per job, pickup and cancel latency,
/// a table of 10,000,000 finished jobs, and a long reader.
extension BenchRun {
    /// Runner processes as the drain phases run them: as many as PGQueuer's consumers, each taking batches of 100
    /// (PGQueuer's batch) into 200 slots, so the next claim overlaps the batch running.
    static let runnerEnvironment = ["WORKERS": "200", "CLAIM_BATCH": "100"]

    /// Drains `jobs` no-op jobs queued now (behind `depth - jobs` more, which stay queued) with `runners` processes;
    /// the rate from the database's own timestamps and the WAL written per job (with no checkpoint forced, as the
    /// peers measure it). The rate is over the whole drain, first start to last finish (as PGQueuer's wall time is),
    /// or with `steady` between the 10th and the 90th percentile of the finish times, leaving out the runners'
    /// start and the tail, for comparing drains of different lengths. With `keepHistory`, the finished jobs already
    /// in the table stay.
    func drain(
        jobs: Int, depth: Int? = nil, runners: Int, keepHistory: Bool = false, steady: Bool = false
    ) async throws -> (rate: Double, walPerJob: Double) {
        if keepHistory {
            try await self.exec("TRUNCATE skipper.jobs_active, skipper.runners")
        } else {
            try await self.reset()
        }
        try await self.exec(PostgresQuery(unsafeSQL: "INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, \(depth ?? jobs))"))
        try await self.exec("VACUUM ANALYZE skipper.jobs_active")
        let mark = try await self.scalarText("SELECT clock_timestamp()::text")
        let before = try await self.scalarText("SELECT pg_current_wal_lsn()::text")
        // Finished jobs by the rollup the queue keeps: polling it costs the runners nothing.
        let counted = "SELECT coalesce(sum(jobs), 0)::int8 FROM skipper.job_counts WHERE status = 'COMPLETED'"
        let baseline = try await self.count(PostgresQuery(unsafeSQL: counted))
        try await Runners.with(runners, url: self.url, environment: Self.runnerEnvironment) { _ in
            try await self.waitUntil(timeout: 600) {
                try await self.count(PostgresQuery(unsafeSQL: counted)) - baseline >= Int64(jobs)
            }
        }
        let wal = try await self.scalarDouble(PostgresQuery(unsafeSQL: "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '\(before)')::float8"))
        let rows = try await self.client.query(
            PostgresQuery(unsafeSQL: """
                SELECT count(*)::int8, extract(epoch FROM max(finished_at) - min(started_at))::float8,
                       extract(epoch FROM percentile_disc(0.9) WITHIN GROUP (ORDER BY finished_at)
                                          - percentile_disc(0.1) WITHIN GROUP (ORDER BY finished_at))::float8
                FROM skipper.jobs
                WHERE status = 'COMPLETED' AND finished_at >= '\(mark)'::timestamptz
                """), logger: self.logger)
        for try await (finished, seconds, middle) in rows.decode((Int64, Double, Double).self) {
            let rate = steady ? 0.8 * Double(finished) / middle : Double(finished) / seconds
            return (rate, wal / Double(finished))
        }
        throw BenchError("no finished jobs")
    }

    /// Prints where PostgreSQL's time went during `body`, statement by statement (pg_stat_statements, when the
    /// server preloads it, as the private cluster of `make bench` does).
    func statementProfile(of what: String, _ body: () async throws -> Void) async throws {
        var available = (try? await self.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")) != nil
        if available { available = (try? await self.exec("SELECT pg_stat_statements_reset()")) != nil }
        try await body()
        guard available else {
            Swift.print("profile: pg_stat_statements is not preloaded on this server; skipped")
            return
        }
        Swift.print("profile of \(what): PostgreSQL's time per statement (pg_stat_statements)")
        let rows = try await self.client.query(
            """
            SELECT calls, round(total_exec_time)::int8, round((total_exec_time / calls)::numeric, 3)::float8, rows,
                   left(regexp_replace(query, '\\s+', ' ', 'g'), 90)
            FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY total_exec_time DESC LIMIT 6
            """, logger: self.logger)
        for try await (calls, total, mean, count, query) in rows.decode((Int64, Int64, Double, Int64, String).self) {
            Swift.print("  \(String(total).leftPad(6)) ms  \(String(calls).leftPad(6)) calls  \(String(format: "%.3f", mean).leftPad(8)) ms each  \(String(count).leftPad(7)) rows  \(query)")
        }
    }

    /// The median of `rounds` drains: single drains on this shared machine swing by a third.
    func medianDrain(
        rounds: Int = 3, jobs: Int, depth: Int? = nil, runners: Int, keepHistory: Bool = false, steady: Bool = false
    ) async throws -> (rate: Double, walPerJob: Double) {
        var results: [(rate: Double, walPerJob: Double)] = []
        for _ in 0..<rounds {
            results.append(try await self.drain(jobs: jobs, depth: depth, runners: runners, keepHistory: keepHistory, steady: steady))
        }
        results.sort { $0.rate < $1.rate }
        return results[results.count / 2]
    }

    func queue(into report: inout Report, peers: Peers) async throws {
        // 1. Against the peers: 50,000 jobs, two processes, batches of 100.
        try await self.statementProfile(of: "a drain of 50,000 jobs by 2 runners") { _ = try await self.drain(jobs: 50_000, runners: 2) }
        let two = try await self.medianDrain(jobs: 50_000, runners: 2)
        let one = try await self.medianDrain(jobs: 50_000, runners: 1)
        Swift.print("drain: 2 runners \(Int(two.rate)) jobs/s (\(Int(two.walPerJob)) WAL bytes/job), 1 runner \(Int(one.rate)) jobs/s")
        report.add("drain 50,000 noop, 2 runner processes", two.rate, "jobs/s", "PGQueuer \(peers.pgqueuerVersion ?? ""), 2 processes", peers.pgqueuerDrain, .times)
        report.add("drain 50,000 noop, 2 runner processes", two.rate, "jobs/s", "minimal SKIP LOCKED cycle, 2 clients", peers.minimalTwoClients)
        report.add("drain 50,000 noop, 1 runner process", one.rate, "jobs/s", "minimal SKIP LOCKED cycle, 1 client", peers.minimalOneClient)
        report.add("WAL per job (drain, 2 runners)", two.walPerJob, "bytes", "PGQueuer", peers.pgqueuerWALPerJob, .times)
        report.add("WAL per job (drain, 2 runners)", two.walPerJob, "bytes", "minimal cycle", peers.minimalWALPerJob, .times)

        // 2. Depth: 50,000 jobs claimed from the head of a backlog of 1,000,000, against a backlog of 20,000 drained
        // whole (two runners, medians of three, steady rates: the 10th to the 90th percentile of finishes).
        let shallow = try await self.medianDrain(jobs: 20_000, runners: 2, steady: true)
        let deep = try await self.medianDrain(jobs: 50_000, depth: 1_000_000, runners: 2, steady: true)
        Swift.print("depth: 20,000 queued \(Int(shallow.rate)) jobs/s, 1,000,000 queued \(Int(deep.rate)) jobs/s (steady)")
        report.add("drain with 1,000,000 queued, 2 runners (steady)", deep.rate, "jobs/s", "the same with 20,000 queued", shallow.rate)
    }

    /// Limits that are set but never reached: the same drain with a concurrency limit of 100,000 on the queue, and
    /// with a rate limit of 100,000,000 starts a minute, against no limit. The three take turns, round after round
    /// (medians of five each): run one after the other, a drift of the machine's speed over the minute (this
    /// machine's drains swing by a third between runs) landed on whichever came last.
    func limits(into report: inout Report) async throws {
        var runs: (free: [Double], concurrency: [Double], rate: [Double]) = ([], [], [])
        for _ in 0..<5 {
            try await self.exec("DELETE FROM skipper.queues")
            runs.free.append(try await self.drain(jobs: 50_000, runners: 2).rate)
            try await self.exec("INSERT INTO skipper.queues (name, concurrency) VALUES ('default', 100000)")
            runs.concurrency.append(try await self.drain(jobs: 50_000, runners: 2).rate)
            try await self.exec("UPDATE skipper.queues SET concurrency = NULL, rate_limit = 100000000, rate_period = '1 minute'")
            runs.rate.append(try await self.drain(jobs: 50_000, runners: 2).rate)
            try await self.exec("TRUNCATE skipper.rate_starts")
        }
        try await self.exec("DELETE FROM skipper.queues")
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let (free, concurrency, rate) = (median(runs.free), median(runs.concurrency), median(runs.rate))
        Swift.print("limits rounds (jobs/s): none \(runs.free.map(Int.init)), concurrency \(runs.concurrency.map(Int.init)), rate \(runs.rate.map(Int.init))")
        Swift.print("limits not reached: none \(Int(free)), concurrency \(Int(concurrency)), rate \(Int(rate)) jobs/s")
        report.add("drain 50,000 noop, 2 runners, concurrency limit set, not reached", concurrency, "jobs/s", "the same without limits", free)
        report.add("drain 50,000 noop, 2 runners, rate limit set, not reached", rate, "jobs/s", "the same without limits", free)
    }

    /// Pickup latency at a steady 200 jobs/s, idle runners waiting on LISTEN, each job enqueued alone (as an app
    /// would), against PGQueuer's at the same rate.
    func latency(into report: inout Report, peers: Peers) async throws {
        try await self.reset()
        try await Runners.with(2, url: self.url, environment: [:]) { _ in
            try await self.waitUntil(timeout: 30) { try await self.count("SELECT count(*) FROM skipper.runners") == 2 }
            try await Task.sleep(for: .milliseconds(500))
            let start = ContinuousClock.now
            for i in 0..<2000 {
                try await self.skipper.enqueue(kind: "noop")
                let next = start + .milliseconds(5 * (i + 1))
                if next > .now { try await Task.sleep(until: next) }
            }
            try await self.waitUntil(timeout: 60) { try await self.drained() }
        }
        let (p50, p99) = try await self.percentiles("started_at - created_at")
        report.add("enqueue-to-start latency p50 (200 jobs/s)", p50, "ms", "PGQueuer", peers.pgqueuerPickupP50, .times)
        report.add("enqueue-to-start latency p99 (200 jobs/s)", p99, "ms", "PGQueuer", peers.pgqueuerPickupP99, .times)
        Swift.print("enqueue-to-start: p50 \(p50) ms, p99 \(p99) ms")
    }

    /// Cancel latency of RUNNING jobs: from the cancel request to CANCELLED, by the server's clock.
    func cancel(into report: inout Report) async throws {
        try await self.reset()
        try await Runners.with(2, url: self.url, environment: ["WORKERS": "50"]) { _ in
            let sleepers = (0..<100).map { _ in NewJob(kind: "sleep", args: #"{"ms": 120000}"#) }
            let ids = try await self.skipper.enqueueMany(sleepers)
            try await self.waitUntil(timeout: 30) { try await self.count("SELECT count(*) FROM skipper.jobs WHERE status = 'RUNNING'") == 100 }
            for id in ids {
                _ = try await self.skipper.cancel(id: id)
                try await Task.sleep(for: .milliseconds(20))
            }
            try await self.waitUntil(timeout: 30) { try await self.count("SELECT count(*) FROM skipper.jobs WHERE status = 'CANCELLED'") == 100 }
        }
        let (p50, p99) = try await self.percentiles("finished_at - cancel_requested_at")
        report.add("cancel latency of RUNNING jobs p50", p50, "ms")
        report.add("cancel latency of RUNNING jobs p99", p99, "ms")
        Swift.print("cancel: p50 \(p50) ms, p99 \(p99) ms")
    }

    /// A REPEATABLE READ transaction held open for `BENCH_READER_SECONDS` (120 s) during a steady 1,000 jobs/s: the
    /// largest backlog meanwhile, and how long after it ends the backlog is back to what the load itself keeps queued.
    func longReader(into report: inout Report) async throws {
        let holdSeconds = Int(ProcessInfo.processInfo.environment["BENCH_READER_SECONDS"] ?? "") ?? 120
        try await self.reset()
        let reader = try DatabaseConfig(url: self.url)
        try await Runners.with(2, url: self.url, environment: [:]) { _ in
            try await self.waitUntil(timeout: 30) { try await self.count("SELECT count(*) FROM skipper.runners") == 2 }
            let feeding = Task {
                let start = ContinuousClock.now
                var tick = 0
                while !Task.isCancelled {
                    tick += 1
                    _ = try await self.skipper.enqueueMany((0..<10).map { _ in NewJob(kind: "noop") })
                    let next = start + .milliseconds(10 * tick)
                    if next > .now { try await Task.sleep(until: next) }
                }
            }
            defer { feeding.cancel() }
            try await Task.sleep(for: .seconds(5))
            let steady = try await self.count("SELECT count(*) FROM skipper.jobs WHERE status = 'QUEUED' AND finished_at IS NULL")
            let worst = try await withPostgresClient(reader, maxConnections: 1) { client in
                try await client.withTransaction(logger: self.logger) { connection -> Int64 in
                    try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: self.logger)
                    try await connection.perform("SELECT count(*) FROM skipper.jobs", logger: self.logger)
                    var worst: Int64 = 0
                    for _ in 0..<holdSeconds {
                        try await Task.sleep(for: .seconds(1))
                        worst = max(worst, try await self.count("SELECT count(*) FROM skipper.jobs WHERE status = 'QUEUED' AND finished_at IS NULL"))
                    }
                    return worst
                }
            }
            let ended = ContinuousClock.now
            let threshold = max(1000, 2 * steady)
            try await self.waitUntil(timeout: 300) {
                try await self.count("SELECT count(*) FROM skipper.jobs WHERE status = 'QUEUED' AND finished_at IS NULL") <= threshold
            }
            let recovered = ContinuousClock.now - ended
            let seconds = Double(recovered.components.seconds) + Double(recovered.components.attoseconds) / 1e18
            Swift.print("long reader (\(holdSeconds) s at 1,000 jobs/s): steady backlog \(steady), worst \(worst), back under \(threshold) \(String(format: "%.1f", seconds)) s after")
            report.add("long reader \(holdSeconds) s at 1,000 jobs/s: worst backlog", Double(worst), "jobs")
            report.add("long reader: backlog back to steady after it ends", seconds, "s")
        }
    }

    /// 10,000,000 finished jobs in the table: the drain against the empty table's, the list API's p99 over HTTP, and
    /// skipper.queue_stats.
    func history(into report: inout Report, emptyRate: Double) async throws {
        try await self.reset()
        Swift.print("history: inserting 10,000,000 finished jobs…")
        let insertStart = ContinuousClock.now
        for chunk in 0..<10 {
            try await self.exec(PostgresQuery(unsafeSQL: """
                INSERT INTO skipper.jobs (kind, queue, status, attempt, args, started_at, finished_at)
                SELECT CASE WHEN i % 1000 = 0 THEN 'rare' ELSE 'noop' END, 'q' || (i % 4),
                       CASE WHEN i % 100 = 0 THEN 'FAILED' ELSE 'COMPLETED' END, 1, '{"n": 1}', now(), now()
                FROM generate_series(\(chunk * 1_000_000 + 1), \((chunk + 1) * 1_000_000)) i
                """))
        }
        try await self.exec("SELECT skipper.recount_finished()")
        try await self.exec("VACUUM ANALYZE skipper.jobs")
        Swift.print("history: inserted in \(ContinuousClock.now - insertStart)")
        let full = try await self.medianDrain(jobs: 50_000, runners: 2, keepHistory: true, steady: true)
        Swift.print("history: drain with 10,000,000 finished \(Int(full.rate)) jobs/s (empty table \(Int(emptyRate)))")
        report.add("drain with 10,000,000 finished jobs, 2 runners (steady)", full.rate, "jobs/s", "the same on an empty table", emptyRate)

        let port = Int.random(in: 30000..<50000)
        let api = try ChildProcess.skipper("skipper-api", url: self.url, environment: ["PORT": "\(port)", "LOG_LEVEL": "error"])
        defer { api.signal(SIGTERM) }
        try await self.waitUntil(timeout: 30) { await Self.get("http://127.0.0.1:\(port)/ready") == 200 }
        for (label, query) in [
            ("status=COMPLETED", "status=COMPLETED"), ("status=FAILED", "status=FAILED"), ("kind=rare", "kind=rare"), ("queue=q1", "queue=q1"),
        ] {
            var times: [Double] = []
            var after: String?
            for _ in 0..<200 {
                let start = ContinuousClock.now
                let (status, body) = try await Self.getBody("http://127.0.0.1:\(port)/jobs?\(query)&limit=50" + (after.map { "&after=\($0)" } ?? ""))
                let took = ContinuousClock.now - start
                guard status == 200 else { throw BenchError("GET /jobs?\(query): \(status) \(body.prefix(200))") }
                times.append(Double(took.components.seconds) * 1000 + Double(took.components.attoseconds) / 1e15)
                // Page on, as a client walking the list would, from newest to older.
                after = ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any])?["next"] as? String
            }
            times.sort()
            let p99 = times[Int(Double(times.count) * 0.99) - 1]
            report.add("GET /jobs?\(label) p99, 10,000,000 finished", p99, "ms")
            Swift.print("history: GET /jobs?\(label) p99 \(String(format: "%.1f", p99)) ms")
        }
        var stats: [Double] = []
        for _ in 0..<20 {
            let start = ContinuousClock.now
            _ = try await self.client.query("SELECT * FROM skipper.queue_stats", logger: self.logger).collect()
            let took = ContinuousClock.now - start
            stats.append(Double(took.components.seconds) * 1000 + Double(took.components.attoseconds) / 1e15)
        }
        report.add("SELECT * FROM skipper.queue_stats, 10,000,000 finished (slowest of 20)", stats.max() ?? 0, "ms")
        Swift.print("history: queue_stats slowest \(String(format: "%.1f", stats.max() ?? 0)) ms")
    }
}
