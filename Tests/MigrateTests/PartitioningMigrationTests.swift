import Foundation
import Logging
import PostgresNIO
import Skipper
import Synchronization
import Testing
import TestSupport

/// Moving a busy job table of a million rows to the partitioned layout: the queue never waits more than a second.
@Suite struct PartitioningMigrationTests {
    @Test func aMillionRowTableMovesToPartitionsWithoutStallingTheQueue() async throws {
        try await withTestDatabase(migrated: false) { db in
            #expect(try await migrate(["up", "4"], url: db.url).status == 0)
            try await db.query(
                """
                INSERT INTO skipper.jobs (kind, args, status, attempt, started_at, finished_at)
                SELECT 'noop', '{"n": 1}', 'COMPLETED', 1, now() - interval '3 days' + i * interval '200 ms',
                       now() - interval '3 days' + i * interval '200 ms'
                FROM generate_series(1, 1000000) i
                """)
            try await db.query("INSERT INTO skipper.jobs (kind, unique_key) SELECT 'noop', 'k' || i FROM generate_series(1, 100000) i")
            try await db.query("VACUUM ANALYZE skipper.jobs")

            // The queue's work goes on throughout: a job inserted and one read by id, every 10 ms, timed.
            let worst = Mutex<Duration>(.zero)
            let stop = Atomic<Bool>(false)
            let probe = Task {
                try await db.withClient(maxConnections: 2) { client in
                    let logger = Logger(label: "test")
                    while !stop.load(ordering: .relaxed) {
                        let start = ContinuousClock.now
                        try await client.query("INSERT INTO skipper.jobs (kind) VALUES ('noop')", logger: logger)
                        try await client.query("SELECT status FROM skipper.jobs WHERE id = 1000", logger: logger)
                        let took = ContinuousClock.now - start
                        worst.withLock { $0 = max($0, took) }
                        try await Task.sleep(for: .milliseconds(10))
                    }
                }
            }
            let migrated = try await migrate(["up"], url: db.url)
            stop.store(true, ordering: .relaxed)
            try await probe.value
            #expect(migrated.status == 0, "\(migrated.stderr)")
            let stall = worst.withLock { $0 }
            #expect(stall < .seconds(1), "the queue waited \(stall)")
            print("migrating 1,100,000 jobs: \(migrated.stdout.split(separator: "\n").joined(separator: "; ")); the queue's longest wait: \(stall)")

            // Nothing lost; every job where it belongs.
            #expect(try await db.scalar("SELECT count(*) >= 1100000 FROM skipper.jobs") == "true")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'COMPLETED'") == "1000000")
            // A big table: the cutover is two days away, its check not validated yet, no daily partition yet.
            #expect(try await db.scalar("SELECT cutover > now() + interval '1 day' FROM skipper.partitioning") == "true")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.job_partitions") == "0")
            // Unique keys now per kind: another kind may hold "k1", the same kind may not.
            try await db.query("INSERT INTO skipper.jobs (kind, unique_key) VALUES ('sleep', 'k1')")
            await #expect(throws: (any Error).self) { try await db.query("INSERT INTO skipper.jobs (kind, unique_key) VALUES ('noop', 'k1')") }

            // The leader's background work: validate (a scan that blocks no one), then partitions without a scan.
            try await db.query("SELECT skipper.validate_cutover()")
            let created = try #require(try await db.scalar("SELECT skipper.create_job_partitions(3)").flatMap { Int($0) })
            #expect(created >= 1)
            #expect(try await db.scalar("SELECT count(*) FROM skipper.job_partitions WHERE starts_at >= (SELECT cutover FROM skipper.partitioning)") == "\(created)")
            // Jobs keep finishing into the active partition until the cutover, then into the day's partition.
            try await db.query("UPDATE skipper.jobs SET status = 'COMPLETED', finished_at = now() WHERE id = (SELECT min(id) FROM skipper.jobs WHERE status = 'QUEUED' AND finished_at IS NULL)")
            try await db.query("UPDATE skipper.jobs SET status = 'COMPLETED', finished_at = (SELECT cutover FROM skipper.partitioning) + interval '1 hour' WHERE id = (SELECT min(id) FROM skipper.jobs WHERE status = 'QUEUED' AND finished_at IS NULL)")
            #expect(try await db.scalar("SELECT string_agg(DISTINCT tableoid::regclass::text, ',') FROM skipper.jobs WHERE status = 'COMPLETED' AND finished_at BETWEEN now() - interval '1 minute' AND now() + interval '1 minute'") == "skipper.jobs_active")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE tableoid <> 'skipper.jobs_active'::regclass") == "1")
        }
    }

    /// Retention drops a day's partition with its jobs and their artifacts, one partition per call (a DROP holds the
    /// whole table's lock until commit), and the functions the runner's role may call refuse arguments out of range:
    /// they run as the owner, so `drop_job_partitions('0')` would otherwise drop every finished job.
    @Test func retentionDropsADayAtATimeAndRefusesAbsurdArguments() async throws {
        try await withTestDatabase { db in
            _ = try await db.scalar("SELECT skipper.create_job_partitions(3)")
            let today = try #require(try await db.scalar("SELECT name FROM skipper.job_partitions WHERE now() >= starts_at AND now() < ends_at"))
            let tomorrow = try #require(try await db.scalar("SELECT name FROM skipper.job_partitions WHERE now() + interval '1 day' >= starts_at AND now() + interval '1 day' < ends_at"))
            try await db.query(
                """
                INSERT INTO skipper.jobs (kind, status, attempt, started_at, finished_at)
                SELECT 'noop', 'COMPLETED', 1, now(), now() + (i % 2) * interval '1 day' FROM generate_series(1, 10) i
                """)
            try await db.query("INSERT INTO skipper.jobs (kind) VALUES ('noop')")
            try await db.query("INSERT INTO skipper.job_artifacts (job_id, name, seq, data) SELECT id, 'csv', 0, '\\x00' FROM skipper.jobs")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE tableoid = 'skipper.\(unescaped: today)'::regclass") == "5")
            // Both days end long ago, as far as retention can tell.
            try await db.query("UPDATE skipper.job_partitions SET starts_at = starts_at - interval '30 days', ends_at = ends_at - interval '30 days' WHERE name IN (\(today), \(tomorrow))")

            #expect(try await db.scalar("SELECT skipper.drop_job_partitions(interval '7 days')") == "5")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.job_partitions WHERE name = \(today)") == "0")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "6")
            #expect(try await db.scalar("SELECT skipper.drop_job_partitions(interval '7 days')") == "5")
            #expect(try await db.scalar("SELECT skipper.drop_job_partitions(interval '7 days')") == "0")
            // The waiting job and its artifact stay; the dropped jobs' artifacts went with them.
            #expect(try await db.scalar("SELECT count(*) || ' ' || min(status) FROM skipper.jobs") == "1 QUEUED")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.job_artifacts") == "1")

            for absurd in ["SELECT skipper.drop_job_partitions(interval '0')", "SELECT skipper.drop_job_partitions(interval '-100 years')",
                           "SELECT skipper.create_job_partitions(1000000)", "SELECT skipper.create_job_partitions(0)"] {
                await #expect(throws: (any Error).self, "\(absurd)") { _ = try await db.scalar(PostgresQuery(unsafeSQL: absurd)) }
            }
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "1")
        }
    }

    /// Jobs that finished before the cutover (in the active partition) are pruned by skipper.prune_finished, which
    /// deletes only finished jobs older than the retention, with their artifacts, and refuses absurd arguments: the
    /// runner's role no longer deletes from the partition itself (it could delete QUEUED and RUNNING jobs).
    @Test func pruningTheActivePartitionTakesOnlyOldFinishedJobs() async throws {
        try await withTestDatabase { db in
            // Before the cutover (the moment the template was migrated, maybe hours ago): finished long ago, finished lately
            // (just before the cutover), waiting, running.
            try await db.query(
                """
                INSERT INTO skipper.jobs_active (kind, status, attempt, started_at, finished_at) VALUES
                  ('noop', 'COMPLETED', 1, now(), now() - interval '10 days'), ('noop', 'FAILED', 1, now(), now() - interval '9 days'),
                  ('noop', 'COMPLETED', 1, now(), (SELECT cutover FROM skipper.partitioning) - interval '1 minute')
                """)
            try await db.query("INSERT INTO skipper.jobs_active (kind, status, attempt, started_at) VALUES ('noop', 'QUEUED', 0, NULL), ('noop', 'RUNNING', 1, now())")
            try await db.query("INSERT INTO skipper.job_artifacts (job_id, name, seq, data) SELECT id, 'csv', 0, '\\x00' FROM skipper.jobs")
            #expect(try await db.scalar("SELECT skipper.prune_finished(7 * 86400000, 1)") == "1")
            #expect(try await db.scalar("SELECT skipper.prune_finished(7 * 86400000, 100)") == "1")
            #expect(try await db.scalar("SELECT skipper.prune_finished(7 * 86400000, 100)") == "0")
            #expect(try await db.scalar("SELECT string_agg(status, ',' ORDER BY id) FROM skipper.jobs") == "COMPLETED,QUEUED,RUNNING")
            #expect(try await db.scalar("SELECT count(*) FROM skipper.job_artifacts") == "3")
            for absurd in ["SELECT skipper.prune_finished(0, 100)", "SELECT skipper.prune_finished(-1, 100)",
                           "SELECT skipper.prune_finished(86400000, 0)", "SELECT skipper.prune_finished(86400000, 1000000)",
                           "SELECT skipper.prune_finished(NULL, 10)"] {
                await #expect(throws: (any Error).self, "\(absurd)") { _ = try await db.scalar(PostgresQuery(unsafeSQL: absurd)) }
            }
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "3")
        }
    }
}
