import Foundation
import Logging
import PostgresNIO
import Testing
import TestSupport

@testable import Skipper

/// What must hold on the queue's worst days, each a defect found on main before the fix: shared unique keys, cancels
/// that race a failing attempt, outcomes PostgreSQL refuses, unbounded histories, squatted keys, kinds nobody runs.
@Suite struct FaultTests {
    let logger = Logger(label: "test")

    func claim(_ store: JobStore, _ db: TestDatabase, _ runner: String, limit: Int = 10, kinds: [String] = ["noop", "sleep", "fail"]) async throws -> [ClaimedJob] {
        try await db.liveRunner(runner)
        return try await store.claim(queues: ["default"], kinds: kinds, runnerID: runner, limit: limit)
    }

    /// Two RUNNING jobs may share a unique key (the index covers QUEUED jobs only). When their runner died, rescue
    /// put both back to QUEUED, hit the unique index and rolled back every round: nothing was rescued or pruned.
    @Test func jobsSharingAUniqueKeyAreRescuedTogether() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let options = JobOptions(uniqueKey: "report")
                let a = try await skipper.enqueue(kind: "noop", options: options).id
                _ = try await self.claim(store, db, "dead", limit: 1)
                let b = try await skipper.enqueue(kind: "noop", options: options).id
                _ = try await self.claim(store, db, "dead", limit: 1)
                let c = try await skipper.enqueue(kind: "noop", options: options).id
                #expect(Set([a, b, c]).count == 3)
                let d = try await skipper.enqueue(kind: "noop", options: JobOptions(uniqueKey: "other")).id
                _ = try await self.claim(store, db, "dead", limit: 5)
                // Jobs a and b (key "report") and c, d RUNNING under "dead"; a new "report" job waits QUEUED.
                let e = try await skipper.enqueue(kind: "noop", options: options).id
                try await db.query("UPDATE skipper.runners SET lease_ms = 1000, heartbeat_at = now() - interval '1 minute' WHERE id = 'dead'")
                let rescued = try #require(try await store.asLeader(.rescue) { try await store.rescue(on: $0) })
                #expect(Set(rescued.map(\.id)) == Set([a, b, c, d]))
                #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'QUEUED'") == "5")
                // The QUEUED one keeps "report"; the rescued ones that shared it lost theirs; "other" kept its own.
                #expect(try await db.scalar("SELECT string_agg(id::text, ',' ORDER BY id) FROM skipper.jobs WHERE unique_key = 'report'") == "\(e)")
                #expect(try await db.scalar("SELECT unique_key FROM skipper.jobs WHERE id = \(d)") == "other")
                // And maintenance as a whole goes on (rescue, then retention).
                let maintenance = Maintenance(store: store, config: try RunnerConfig.fromEnvironment([:]), gate: StartGate(), wakeClaims: {}, logger: self.logger)
                await maintenance.round()
            }
        }
    }

    /// A job whose `errors` is not an array (written by hand) failed every rescue of it ("cannot get array length of
    /// a non-array"): it stayed RUNNING under a dead runner for good, and dead runners' rows piled up, since they were
    /// forgotten only by a round that rescued everything. Such a row is rescued (its value kept as the first entry),
    /// a failed attempt of one is recorded, and dead runners are forgotten whatever becomes of their jobs.
    @Test func aJobWhoseErrorsIsNotAnArrayIsRescuedAndFailsLikeAnyOther() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let odd = try await skipper.enqueue(kind: "noop").id
                let plain = try await skipper.enqueue(kind: "noop").id
                _ = try await self.claim(store, db, "dead", limit: 2)
                try await db.query("UPDATE skipper.jobs SET errors = '{\"note\": \"by hand\"}' WHERE id = \(odd)")
                try await db.query("UPDATE skipper.runners SET lease_ms = 1000, heartbeat_at = now() - interval '1 minute' WHERE id = 'dead'")
                let maintenance = Maintenance(store: store, config: RunnerConfig(), gate: StartGate(), wakeClaims: {}, logger: self.logger)
                await maintenance.round()
                #expect(try await db.scalar("SELECT string_agg(status, ',' ORDER BY id) FROM skipper.jobs") == "QUEUED,QUEUED")
                #expect(try await db.scalar("SELECT errors->0->>'note' FROM skipper.jobs WHERE id = \(odd)") == "by hand")
                #expect(try await db.scalar("SELECT jsonb_array_length(errors) FROM skipper.jobs WHERE id = \(plain)") == "1")
                #expect(try await db.scalar("SELECT count(*) FROM skipper.runners WHERE id = 'dead'") == "0")

                // A failed attempt of such a job is recorded too.
                try await db.query("UPDATE skipper.jobs SET errors = '\"text\"' WHERE id = \(odd)")
                let again = try #require(try await self.claim(store, db, "r", limit: 2).first { $0.id == odd })
                let applied = try await store.finish(
                    [Finished(claim: again.claim, outcome: .failed(error: "boom", retryDelay: .zero, permanent: true))], runnerID: "r")
                #expect(applied == [again.claim])
                #expect(try await db.scalar("SELECT status || ' ' || (errors->0 #>> '{}') || ' ' || (errors->1->>'error') FROM skipper.jobs WHERE id = \(odd)") == "FAILED text boom")
            }
        }
    }

    /// A cancel that lands while an attempt fails was acknowledged, but the failure put the job back to QUEUED and it
    /// ran again. A job with a cancel request never goes back to QUEUED: failed, released or rescued, it ends CANCELLED.
    @Test func aCancelledJobNeverGoesBackToQueued() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                for outcome in [Finished.Outcome.failed(error: "boom", retryDelay: .zero, permanent: false), .released] {
                    let id = try await skipper.enqueue(kind: "noop").id
                    let job = try #require(try await self.claim(store, db, "r", limit: 1).first)
                    #expect(try await skipper.cancel(id: id) == .requested)
                    #expect(try await store.finish([Finished(claim: job.claim, outcome: outcome)], runnerID: "r") == [job.claim])
                    #expect(try await db.scalar("SELECT status || ' ' || (finished_at IS NOT NULL) FROM skipper.jobs WHERE id = \(id)") == "CANCELLED true")
                    #expect(try await self.claim(store, db, "r").isEmpty)
                }
            }
        }
    }

    /// `fail` with a retry of 10^17 ms was accepted; the completer's UPDATE then failed (interval out of range) and it
    /// retried the batch forever, so no later outcome of that runner was written. Now: the delay is bounded, an outcome
    /// PostgreSQL refuses is isolated and recorded FAILED with the reason, and the others are written.
    @Test func anOutcomePostgreSQLRefusesIsIsolatedAndTheOthersAreWritten() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let ids = try await skipper.enqueueMany((0..<4).map { _ in NewJob(kind: "noop") })
                let jobs = try await self.claim(store, db, "r")
                #expect(jobs.count == 4)
                let completer = Completer(store: store, runnerID: "r", logger: self.logger)
                let running = Task { try await completer.run() }
                defer { running.cancel() }
                completer.submit(Finished(claim: jobs[0].claim, outcome: .completed(result: #"{"fine": true}"#)))
                // Not JSON: PostgreSQL refuses to store it as jsonb.
                completer.submit(Finished(claim: jobs[1].claim, outcome: .completed(result: "{broken")))
                completer.submit(Finished(claim: jobs[2].claim, outcome: .failed(error: "later", retryDelay: .milliseconds(100_000_000_000_000_000), permanent: false)))
                completer.submit(Finished(claim: jobs[3].claim, outcome: .completed(result: nil)))
                #expect(try await eventually(timeout: .seconds(10)) {
                    try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status <> 'RUNNING'") == "4"
                })
                let states = try await db.query("SELECT id, status, coalesce(errors->-1->>'error', '') FROM skipper.jobs ORDER BY id")
                let byID = Dictionary(uniqueKeysWithValues: states.map { (Int64($0[0]!)!, ($0[1]!, $0[2]!)) })
                #expect(byID[jobs[0].id]?.0 == "COMPLETED" && byID[jobs[3].id]?.0 == "COMPLETED")
                #expect(byID[jobs[1].id]?.0 == "FAILED")
                #expect(byID[jobs[1].id]?.1.contains("could not record this attempt's outcome") == true)
                // The absurd delay was cut to 30 days.
                #expect(try await db.scalar(
                    "SELECT status || ' ' || (run_at BETWEEN now() + interval '29 days' AND now() + interval '31 days') FROM skipper.jobs WHERE id = \(jobs[2].id)") == "QUEUED true")
                #expect(Set(ids) == Set(jobs.map(\.id)))
            }
        }
    }

    /// A history of failures stays bounded: at most 20 entries of at most 8 KiB each, however many attempts fail
    /// with however long a message (a 1 MB message × many attempts grew `errors` past jsonb's limit).
    @Test func theErrorHistoryIsBounded() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let id = try await skipper.enqueue(kind: "noop", options: JobOptions(maxAttempts: 40)).id
                let huge = String(repeating: "x", count: 1_000_000)
                for _ in 0..<30 {
                    let job = try #require(try await self.claim(store, db, "r", limit: 1).first)
                    _ = try await store.finish([Finished(claim: job.claim, outcome: .failed(error: huge, retryDelay: .zero, permanent: false))], runnerID: "r")
                }
                #expect(try await db.scalar("SELECT jsonb_array_length(errors) || ' ' || attempt FROM skipper.jobs WHERE id = \(id)") == "20 30")
                #expect(try await db.scalar("SELECT max(length(e->>'error')) < 8300 FROM skipper.jobs, jsonb_array_elements(errors) e WHERE id = \(id)") == "true")
                #expect(try await db.scalar("SELECT (errors->-1->>'attempt') FROM skipper.jobs WHERE id = \(id)") == "30")
            }
        }
    }

    /// `unique_key` was global across kinds: a `noop` submitted with the key `report.refresh` and `run_at` in 2099
    /// swallowed every payment's refresh. Keys are scoped by kind, and coalescing into a QUEUED twin never delays work.
    @Test func uniqueKeysAreScopedByKindAndCannotBeSquatted() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let far = Date(timeIntervalSince1970: 4_070_908_800)  // 2099
                let squat = try await skipper.enqueue(kind: "noop", options: JobOptions(runAt: far, uniqueKey: "report.refresh"))
                let refresh = try await skipper.enqueue(kind: "report.refresh", options: JobOptions(runAt: Date().addingTimeInterval(0.5), uniqueKey: "report.refresh"))
                #expect(squat.inserted && refresh.inserted && squat.id != refresh.id)
                // A squatter of the right kind, far in the future: the next real enqueue pulls it in.
                try await db.query("DELETE FROM skipper.jobs WHERE id = \(refresh.id)")
                let squatter = try await skipper.enqueue(kind: "report.refresh", options: JobOptions(priority: 5, runAt: far, uniqueKey: "report.refresh"))
                let payment = try await skipper.enqueue(kind: "report.refresh", options: JobOptions(runAt: Date().addingTimeInterval(0.5), uniqueKey: "report.refresh"))
                #expect(squatter.inserted && !payment.inserted && payment.id == squatter.id)
                #expect(try await db.scalar(
                    "SELECT (run_at < now() + interval '5 seconds') || ' ' || priority FROM skipper.jobs WHERE id = \(squatter.id)") == "true 0")
                // A twin that is already sooner is left alone (no write).
                let xmin = try await db.scalar("SELECT xmin FROM skipper.jobs WHERE id = \(squatter.id)")
                _ = try await skipper.enqueue(kind: "report.refresh", options: JobOptions(runAt: far, uniqueKey: "report.refresh"))
                #expect(try await db.scalar("SELECT xmin FROM skipper.jobs WHERE id = \(squatter.id)") == xmin)
            }
        }
    }

    /// A runner claimed kinds it had no handler for (a newer deployment's, or one inserted with SQL) and FAILED them
    /// for good. It claims only what it handles; the rest waits, and queue_stats shows that nobody serves it.
    @Test func aRunnerClaimsOnlyTheKindsItHandles() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let newer = try await skipper.enqueue(kind: "invoice.render").id
                let known = try await skipper.enqueue(kind: "noop").id
                let claimed = try await self.claim(store, db, "old", kinds: ["noop", "sleep"])
                #expect(claimed.map(\.id) == [known])
                #expect(try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(newer)") == "QUEUED")
                try await db.query("UPDATE skipper.runners SET kinds = '{noop,sleep}' WHERE id = 'old'")
                #expect(try await db.scalar("SELECT jobs || ' ' || unserved FROM skipper.queue_stats WHERE queue = 'default' AND status = 'QUEUED'") == "1 1")
            }
        }
    }

    /// A superseded attempt cannot publish: the fenced transaction checks and locks its claim, so a write that must
    /// happen at most once (the settlement's publish) is refused once the job was rescued and claimed again.
    @Test func aFencedTransactionRefusesASupersededAttempt() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                _ = try await skipper.enqueue(kind: "noop")
                let first = try #require(try await self.claim(store, db, "a", limit: 1).first)
                let board = ProgressBoard()
                func context(_ job: ClaimedJob) -> JobContext {
                    JobContext(
                        jobID: job.id, lease: job.lease, kind: job.kind, queue: job.queue, attempt: job.attempt, maxAttempts: job.maxAttempts,
                        meta: job.meta, requestID: nil, runnerLogger: self.logger, postgres: client, cancelsStatements: true, board: board)
                }
                let wrote = try await context(first).withFencedTransaction { connection in
                    try await connection.query("CREATE TABLE published (lease bigint)", logger: self.logger)
                    return true
                }
                #expect(wrote)
                try await db.query("UPDATE skipper.runners SET lease_ms = 1000, heartbeat_at = now() - interval '1 minute' WHERE id = 'a'")
                _ = try await store.asLeader(.rescue) { try await store.rescue(on: $0) }
                let second = try #require(try await self.claim(store, db, "b", limit: 1).first)
                await #expect(throws: ClaimLost.self) {
                    try await context(first).withFencedTransaction { connection in
                        try await connection.query("INSERT INTO published VALUES (\(first.lease))", logger: self.logger)
                    }
                }
                try await context(second).withFencedTransaction { connection in
                    try await connection.query("INSERT INTO published VALUES (\(second.lease))", logger: self.logger)
                }
                #expect(try await db.scalar("SELECT string_agg(lease::text, ',') FROM published") == "\(second.lease)")
                // Once someone asked to cancel the job, its holder publishes nothing either.
                _ = try await store.cancel(id: second.id)
                await #expect(throws: CancellationError.self) {
                    try await context(second).withFencedTransaction { connection in
                        try await connection.query("INSERT INTO published VALUES (0)", logger: self.logger)
                    }
                }
                #expect(try await db.scalar("SELECT count(*) FROM published") == "1")
            }
        }
    }
}

/// skipper.queue_stats counts finished jobs from a rollup the queue's own statements keep (finish, cancel, rescue,
/// retry), rather than counting millions of rows.
@Suite struct QueueStatsTests {
    let logger = Logger(label: "test")

    @Test func finishedJobsAreCountedByTheStatementsThatFinishThem() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let ids = try await skipper.enqueueMany((0..<6).map { _ in NewJob(kind: "noop", options: JobOptions(queue: "mail")) })
                try await db.liveRunner("r")
                let jobs = try await store.claim(queues: ["mail"], kinds: ["noop"], runnerID: "r", limit: 4)
                _ = try await store.finish(
                    [Finished(claim: jobs[0].claim, outcome: .completed(result: nil)), Finished(claim: jobs[1].claim, outcome: .completed(result: nil)),
                     Finished(claim: jobs[2].claim, outcome: .failed(error: "no", retryDelay: .zero, permanent: true))],
                    runnerID: "r")
                #expect(try await skipper.cancel(id: ids[5]) == .cancelled)
                // The fourth claimed job's runner dies, on its last attempt: rescue fails it.
                try await db.query("UPDATE skipper.jobs SET max_attempts = 1 WHERE id = \(jobs[3].id)")
                try await db.query("UPDATE skipper.runners SET lease_ms = 1000, heartbeat_at = now() - interval '1 minute'")
                _ = try await store.asLeader(.rescue) { try await store.rescue(on: $0) }
                func stats() async throws -> String? {
                    try await db.scalar("SELECT string_agg(status || '=' || jobs, ' ' ORDER BY status) FROM skipper.queue_stats WHERE queue = 'mail'")
                }
                #expect(try await stats() == "CANCELLED=1 COMPLETED=2 FAILED=2 QUEUED=1")
                #expect(try await db.scalar("SELECT sum(jobs) FROM skipper.job_counts") == "5")
                guard case .queued = try await skipper.retry(id: jobs[2].id) else { Issue.record("not retried"); return }
                #expect(try await stats() == "CANCELLED=1 COMPLETED=2 FAILED=1 QUEUED=2")
                // The same as counting the rows.
                try await db.query("SELECT skipper.recount_finished()")
                #expect(try await stats() == "CANCELLED=1 COMPLETED=2 FAILED=1 QUEUED=2")
            }
        }
    }
}

/// Behind a transaction-pooling PgBouncer (DB_POOLER=pgbouncer, or POLL_ONLY), a backend pid names whichever server connection ran a
/// statement, so a late pg_cancel_backend could hit another client's: there, nothing is cancelled by pid, and a
/// cancelled handler sees the cancellation once its statement is over. Directly connected, the statement stops at once.
@Suite struct PooledCancellationTests {
    let logger = Logger(label: "test")

    func cancelSleep(cancelsStatements: Bool, client: PostgresClient) async -> (Duration, (any Error)?) {
        let context = JobContext(
            jobID: 1, lease: 1, kind: "noop", queue: "default", attempt: 1, maxAttempts: 1, meta: "{}", requestID: nil,
            runnerLogger: self.logger, postgres: client, cancelsStatements: cancelsStatements, board: ProgressBoard())
        let start = ContinuousClock.now
        let task = Task {
            try await context.withConnection { connection in
                for try await _ in try await connection.query("SELECT pg_sleep(2)", logger: self.logger) {}
            }
            // The next statement of a cancelled handler does not start.
            try await context.withConnection { connection in
                for try await _ in try await connection.query("SELECT 1", logger: self.logger) {}
            }
        }
        try? await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let result = await task.result
        if case .failure(let error) = result { return (ContinuousClock.now - start, error) }
        return (ContinuousClock.now - start, nil)
    }

    @Test func pooledModeNeverCancelsByPid() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let (direct, directError) = await self.cancelSleep(cancelsStatements: true, client: client)
                #expect(direct < .milliseconds(1500), "direct: \(direct)")
                #expect(directError is CancellationError)
                let (pooled, pooledError) = await self.cancelSleep(cancelsStatements: false, client: client)
                #expect(pooled >= .milliseconds(1900), "pooled: the statement ran to its end, \(pooled)")
                #expect(pooledError is CancellationError)
            }
        }
    }

    /// An error PostgreSQL raised after a statement had started returning rows was lost when nobody read the rows:
    /// postgres-nio returns the stream once the statement is bound, and a COMMIT after it rolls back without a
    /// word (partition maintenance failed that way, silently). `perform` reads the result and throws.
    @Test func anErrorRaisedMidStatementIsThrownByPerform() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let failsOnRowTwo: PostgresQuery = "SELECT 10 / (2 - g) FROM generate_series(1, 3) g"
                await #expect(throws: PSQLError.self) { try await client.perform(failsOnRowTwo, logger: self.logger) }
                // Inside a transaction, the error surfaces and nothing commits.
                await #expect(throws: (any Error).self) {
                    try await client.withTransaction(logger: self.logger) { connection in
                        try await connection.query("INSERT INTO skipper.kinds (kind) VALUES ('written')", logger: self.logger)
                        try await connection.perform(failsOnRowTwo, logger: self.logger)
                    }
                }
            }
            #expect(try await db.scalar("SELECT count(*) FROM skipper.kinds WHERE kind = 'written'") == "0")
        }
    }

    /// The completer halved a batch into FAILED jobs for any error but a few classes, so a lock timeout, a
    /// read-only standby after a failover or a revoked grant failed (or dropped) jobs that had completed. Only an
    /// error about the rows themselves is a refusal; the rest are retried whole.
    @Test func onlyErrorsAboutTheRowsAreRefusals() {
        for state in ["22003", "22P02", "23505", "23514", "54000"] { #expect(Completer.isRefusal(sqlState: state), "\(state)") }
        for state in ["55P03", "25006", "42501", "40001", "40P01", "57014", "08006", "53300", "XX000"] {
            #expect(!Completer.isRefusal(sqlState: state), "\(state)")
        }
    }

    /// A statement sent as its connection closes can wait forever for an answer and ignores cancellation: a claim
    /// or finish run through `abandoningAfter` is left behind at its limit, or as soon as its caller is cancelled.
    @Test func abandoningAfterLeavesWorkThatIgnoresCancellation() async throws {
        // Ignores cancellation for 3 s, as a hung statement would for ever.
        let stuck: @Sendable () async throws -> Int = { await Task.detached { try? await Task.sleep(for: .seconds(3)) }.value; return 1 }
        #expect(try await abandoningAfter(.seconds(5)) { 42 } == 42)
        var started = ContinuousClock.now
        await #expect(throws: TimeLimitExceeded.self) { try await abandoningAfter(.milliseconds(200), stuck) }
        #expect(ContinuousClock.now - started < .seconds(2))
        started = ContinuousClock.now
        let caller = Task { try await abandoningAfter(.seconds(30), stuck) }
        try await Task.sleep(for: .milliseconds(100))
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
        #expect(ContinuousClock.now - started < .seconds(2))
    }
}
