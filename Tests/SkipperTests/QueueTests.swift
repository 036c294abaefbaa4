import Foundation
import Logging
import PostgresNIO
import Testing
import TestSupport

@testable import Skipper

@Suite struct QueueTests {
    let logger = Logger(label: "test")

    /// Claims as runner `runner`, registered live first (a runner whose lease ran out claims nothing).
    func claim(_ store: JobStore, _ db: TestDatabase, _ runner: String, limit: Int, queues: [String] = ["default"]) async throws -> [ClaimedJob] {
        try await db.liveRunner(runner)
        return try await store.claim(queues: queues, kinds: ["noop", "sleep", "fail"], runnerID: runner, limit: limit)
    }

    @Test func aJobIsClaimedByExactlyOneRunner() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let id = try await skipper.enqueue(kind: "noop").id
                async let a = self.claim(skipper.store, db, "a", limit: 1)
                async let b = self.claim(skipper.store, db, "b", limit: 1)
                let claimed = try await a + b
                #expect(claimed.map(\.id) == [id])
                #expect(claimed.first?.attempt == 1)
            }
        }
    }

    @Test func futureJobsWaitAndLowerPriorityRunsFirst() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let later = try await skipper.enqueue(kind: "noop", options: JobOptions(runAt: Date().addingTimeInterval(3600))).id
                let low = try await skipper.enqueue(kind: "noop", options: JobOptions(priority: 5)).id
                let high = try await skipper.enqueue(kind: "noop", options: JobOptions(priority: -1)).id
                let other = try await skipper.enqueue(kind: "noop", options: JobOptions(queue: "other")).id
                let claimed = try await self.claim(skipper.store, db, "r", limit: 10)
                #expect(claimed.map(\.id) == [high, low])
                #expect(try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(later)") == "QUEUED")
                #expect(try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(other)") == "QUEUED")
                try await db.query("UPDATE skipper.jobs SET run_at = now() - interval '1 second' WHERE id = \(later)")
                #expect(try await self.claim(skipper.store, db, "r", limit: 10).map(\.id) == [later])
            }
        }
    }

    /// A claim resumes after where the runner's last claim stopped (skipping the index entries of jobs it claimed
    /// before, dead until vacuum), and a claim from the head finds what was queued ahead of that point since.
    @Test func aClaimResumesAfterItsPositionAndTheHeadFindsWhatCameBefore() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let ids = try await skipper.enqueueMany((0..<3).map { _ in NewJob(kind: "noop") })
                try await db.liveRunner("r")
                let first = try await store.claim(queues: ["default"], kinds: ["noop"], runnerID: "r", limit: 1)
                #expect(first.map(\.id) == [ids[0]])
                let urgent = try await skipper.enqueue(kind: "noop", options: JobOptions(priority: -5)).id
                let resumed = try await store.claim(queues: ["default"], kinds: ["noop"], runnerID: "r", limit: 1, after: ["default": first[0].position])
                #expect(resumed.map(\.id) == [ids[1]])
                let fromHead = try await store.claim(queues: ["default"], kinds: ["noop"], runnerID: "r", limit: 5)
                #expect(fromHead.map(\.id) == [urgent, ids[2]])
            }
        }
    }

    /// One row inserted with SQL at `run_at = '-infinity'` made every claim of its queue fail ("cannot convert
    /// infinity to bigint"), so no job of the queue ran; and a job at the lowest priority dated before 4684 BC was
    /// never claimed (the head position started there). Both are claimed now, in order, and positions past them
    /// resume correctly (single and multi-queue claims).
    @Test(arguments: [["default"], ["default", "other"]])
    func jobsAtTheEdgesOfTimeAreClaimedAndDoNotStopTheQueue(queues: [String]) async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let store = SkipperClient(postgres: client, logger: self.logger).store
                let ids = try #require(try await db.scalar(
                    """
                    WITH i AS (
                      INSERT INTO skipper.jobs (kind, priority, run_at)
                      VALUES ('noop', 0, now()), ('noop', 0, '-infinity'), ('noop', -32768, '4700-01-01 BC'),
                             ('noop', -32768, '-infinity'), ('noop', 0, 'infinity')
                      RETURNING id)
                    SELECT string_agg(id::text, ',' ORDER BY id) FROM i
                    """)).split(separator: ",").compactMap { Int64($0) }
                try await db.liveRunner("r")
                let first = try await store.claim(queues: queues, kinds: ["noop"], runnerID: "r", limit: 2)
                #expect(first.map(\.id) == [ids[3], ids[2]])
                let rest = try await store.claim(
                    queues: queues, kinds: ["noop"], runnerID: "r", limit: 5, after: ["default": try #require(first.last).position])
                #expect(rest.map(\.id) == [ids[1], ids[0]], "the infinitely late one waits")
                #expect(try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(ids[4])") == "QUEUED")
            }
        }
    }

    /// A QUEUED row at attempt 2147483647 (written by hand) made every claim of its queue fail ("integer out of
    /// range") until someone fixed it; it is claimed now, like the jobs behind it.
    @Test func aJobAtTheLastAttemptNumberDoesNotStopTheQueue() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let store = SkipperClient(postgres: client, logger: self.logger).store
                try await db.query("INSERT INTO skipper.jobs (kind, attempt, max_attempts) VALUES ('noop', 2147483647, 2147483647), ('noop', 0, 3)")
                let claimed = try await self.claim(store, db, "r", limit: 5)
                #expect(claimed.count == 2)
                #expect(claimed.map(\.attempt).max() == 2147483647)
            }
        }
    }

    /// Progress writes skip rows someone else holds locked: one job's row locked (its fenced publish stuck behind a
    /// lock, say) made the whole batch wait holding every other job's row, and an API cancel of those waited too.
    @Test func progressOfOtherJobsIsWrittenWhileOneJobsRowIsLocked() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let store = SkipperClient(postgres: client, logger: self.logger).store
                try await db.query("INSERT INTO skipper.jobs (kind) SELECT 'noop' FROM generate_series(1, 2)")
                let claimed = try await self.claim(store, db, "r", limit: 2).sorted { $0.id < $1.id }
                let locked = claimed[0], free = claimed[1]
                let holder = Task {
                    try await db.withClient(maxConnections: 1) { postgres in
                        try await postgres.withTransaction(logger: self.logger) { connection in
                            try await connection.query("SELECT 1 FROM skipper.jobs WHERE id = \(locked.id) FOR UPDATE", logger: self.logger)
                            try await Task.sleep(for: .seconds(10))
                        }
                    }
                }
                defer { holder.cancel() }
                try await Task.sleep(for: .milliseconds(500))
                let started = ContinuousClock.now
                try await store.writeProgress([(locked.claim, 5, 10), (free.claim, 7, 10)], runnerID: "r")
                #expect(ContinuousClock.now - started < .seconds(3))
                #expect(try await db.scalar("SELECT processed FROM skipper.jobs WHERE id = \(free.id)") == "7")
                #expect(try await skipperCancel(store, free.id) == .requested)
            }
        }
    }

    func skipperCancel(_ store: JobStore, _ id: Int64) async throws -> CancelOutcome { try await store.cancel(id: id) }

    @Test func concurrentEnqueuesWithOneUniqueKeyMakeOneQueuedJob() async throws {
        try await withTestDatabase { db in
            try await db.withClient(maxConnections: 40) { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let jobs = try await withThrowingTaskGroup(of: EnqueuedJob.self) { group in
                    for _ in 0..<1000 {
                        group.addTask { try await skipper.enqueue(kind: "noop", options: JobOptions(uniqueKey: "report")) }
                    }
                    return try await group.reduce(into: [EnqueuedJob]()) { $0.append($1) }
                }
                #expect(jobs.count == 1000)
                #expect(Set(jobs.map(\.id)).count == 1)
                #expect(jobs.filter(\.inserted).count == 1)
                #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "1")
                // Once it runs, the key is free again: the next enqueue makes a new job.
                _ = try await self.claim(skipper.store, db, "r", limit: 1)
                #expect(try await skipper.enqueue(kind: "noop", options: JobOptions(uniqueKey: "report")).inserted)
            }
        }
    }

    @Test func enqueueManyInsertsInOneStatementAndSkipsQueuedKeys() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueue(kind: "noop", options: JobOptions(uniqueKey: "k1"))
                var jobs = (0..<5000).map { NewJob(kind: "sleep", args: #"{"ms": \#($0)}"#, options: JobOptions(queue: "bulk", priority: 2)) }
                jobs.append(NewJob(kind: "noop", options: JobOptions(uniqueKey: "k1")))
                jobs.append(NewJob(kind: "noop", options: JobOptions(runAt: Date(timeIntervalSince1970: 4_000_000_000), uniqueKey: "k2")))
                let ids = try await skipper.enqueueMany(jobs)
                #expect(ids.count == 5001)
                #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE queue = 'bulk' AND priority = 2 AND (args->>'ms')::int < 5000") == "5000")
                #expect(try await db.scalar("SELECT extract(year FROM run_at)::int FROM skipper.jobs WHERE unique_key = 'k2'") == "2096")
            }
        }
    }

    /// Submissions that queue behind a busy flight share one INSERT and one commit, each caller still gets its
    /// own row, and a row PostgreSQL refuses fails only its own caller.
    @Test func concurrentSubmissionsShareACommitAndEachGetsItsOwnRow() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let batcher = SubmitBatcher(store: JobStore(client: client, logger: self.logger), maxFlights: 1)
                let count = 200
                let results = await withTaskGroup(of: (Int, Result<JobRecord, any Error>).self) { group in
                    for i in 0..<count {
                        group.addTask {
                            let item = NewJob(
                                kind: "noop", args: i == 77 ? "{broken" : #"{"n": \#(i)}"#,
                                options: JobOptions(
                                    queue: "q\(i % 3)", priority: Int16(i % 7),
                                    runAt: i % 4 == 0 ? Date(timeIntervalSince1970: 4_000_000_000 + Double(i)) : nil,
                                    maxAttempts: Int32(1 + i % 5), meta: ["request_id": "req-\(i)"]))
                            do { return (i, .success(try await batcher.submit(item))) } catch { return (i, .failure(error)) }
                        }
                    }
                    var results: [Int: Result<JobRecord, any Error>] = [:]
                    for await (i, result) in group { results[i] = result }
                    return results
                }
                for i in 0..<count {
                    switch results[i] {
                    case .success(let record):
                        #expect(i != 77)
                        #expect(record.args == #"{"n": \#(i)}"#)
                        #expect(record.queue == "q\(i % 3)" && record.priority == Int16(i % 7) && record.maxAttempts == Int32(1 + i % 5))
                        #expect(record.meta == #"{"request_id": "req-\#(i)"}"#)
                        if i % 4 == 0 { #expect(record.runAt == Date(timeIntervalSince1970: 4_000_000_000 + Double(i))) }
                    case .failure(let error):
                        #expect(i == 77, "\(String(reflecting: error))")
                    case nil:
                        Issue.record("no result for \(i)")
                    }
                }
                // The stored rows are the ones returned, and most of them shared a transaction with others.
                #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE meta->>'request_id' = 'req-' || (args->>'n')") == "\(count - 1)")
                let commits = Int(try await db.scalar("SELECT count(DISTINCT xmin::text) FROM skipper.jobs") ?? "") ?? 0
                #expect(commits < count / 4, "\(commits) commits for \(count - 1) rows")
            }
        }
    }

    @Test func aJobEnqueuedInARolledBackTransactionNeverExists() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                struct Boom: Error {}
                await #expect(throws: Boom.self) {
                    try await skipper.withTransaction { connection, enqueue in
                        try await connection.query("INSERT INTO products (name, category, stock, price_cents) VALUES ('x', 'y', 1, 1)", logger: self.logger)
                        try await enqueue.enqueue(kind: "noop")
                        throw Boom()
                    }
                }
                #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "0")
                #expect(try await db.scalar("SELECT count(*) FROM products") == "0")
                try await skipper.withTransaction { connection, enqueue in
                    try await connection.query("INSERT INTO products (name, category, stock, price_cents) VALUES ('x', 'y', 1, 1)", logger: self.logger)
                    try await enqueue.enqueue(kind: "noop")
                }
                #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs") == "1")
            }
        }
    }

    @Test func cancellingAQueuedJobIsImmediateAndAFinishedOneIsRefused() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let id = try await skipper.enqueue(kind: "noop").id
                #expect(try await skipper.cancel(id: id) == .cancelled)
                #expect(try await db.scalar("SELECT status || ' ' || (finished_at IS NOT NULL) FROM skipper.jobs WHERE id = \(id)") == "CANCELLED true")
                #expect(try await skipper.cancel(id: id) == .alreadyFinished(.cancelled))
                #expect(try await skipper.cancel(id: 987_654) == .notFound)
                let running = try await skipper.enqueue(kind: "noop").id
                _ = try await self.claim(skipper.store, db, "r", limit: 1)
                #expect(try await skipper.cancel(id: running) == .requested)
                #expect(try await db.scalar("SELECT status || ' ' || (cancel_requested_at IS NOT NULL) FROM skipper.jobs WHERE id = \(running)") == "RUNNING true")
            }
        }
    }

    @Test func aRescuedRunnersLateWritesAreDropped() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let id = try await skipper.enqueue(kind: "noop").id
                let first = try #require(try await self.claim(store, db, "dead", limit: 1).first)
                // Runner "dead" stops heartbeating for longer than its lease: the leader rescues its job.
                try await db.query("UPDATE skipper.runners SET lease_ms = 1000, heartbeat_at = now() - interval '5 seconds' WHERE id = 'dead'")
                let rescued = try await store.asLeader(.rescue) { try await store.rescue(on: $0) }
                #expect(rescued?.map(\.id) == [id])
                let second = try #require(try await self.claim(store, db, "alive", limit: 1).first)
                #expect(second.attempt == 2 && second.lease != first.lease)
                // The first runner wakes up and reports: nothing it writes may land.
                try await store.writeProgress([(first.claim, 99, 100)], runnerID: "dead")
                let late = try await store.finish(
                    [Finished(claim: first.claim, outcome: .completed(result: #"{"who":"dead"}"#), processed: 100, total: 100)],
                    runnerID: "dead")
                #expect(late.isEmpty)
                #expect(try await db.scalar("SELECT status || ' ' || processed FROM skipper.jobs WHERE id = \(id)") == "RUNNING 0")
                let applied = try await store.finish(
                    [Finished(claim: second.claim, outcome: .completed(result: #"{"who":"alive"}"#))], runnerID: "alive")
                #expect(applied == [second.claim])
                #expect(try await db.scalar("SELECT result->>'who' FROM skipper.jobs WHERE id = \(id)") == "alive")
                #expect(try await db.scalar("SELECT errors->0->>'error' FROM skipper.jobs WHERE id = \(id)")?.contains("stopped heartbeating") == true)
            }
        }
    }

    /// The fence is the claim's lease token, not the attempt number: a job released (attempt given back) and claimed
    /// again by the same runner is a new claim, and writes of the old one are dropped.
    @Test func aReclaimedJobIsANewClaimEvenUnderTheSameRunner() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let id = try await skipper.enqueue(kind: "noop").id
                let first = try #require(try await self.claim(store, db, "r", limit: 1).first)
                #expect(try await store.finish([Finished(claim: first.claim, outcome: .released)], runnerID: "r") == [first.claim])
                let second = try #require(try await self.claim(store, db, "r", limit: 1).first)
                #expect(second.attempt == first.attempt && second.lease != first.lease)
                #expect(try await store.finish([Finished(claim: first.claim, outcome: .completed(result: nil))], runnerID: "r").isEmpty)
                #expect(try await db.scalar("SELECT status FROM skipper.jobs WHERE id = \(id)") == "RUNNING")
                #expect(try await store.finish([Finished(claim: second.claim, outcome: .completed(result: nil))], runnerID: "r") == [second.claim])
            }
        }
    }

    @Test func failuresRetryWithBackoffThenFail() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let store = skipper.store
                let id = try await skipper.enqueue(kind: "noop", options: JobOptions(maxAttempts: 2, uniqueKey: "u")).id
                var job = try #require(try await self.claim(store, db, "r", limit: 1).first)
                // A new job with the same key is queued meanwhile: the retry must not collide with it.
                let twin = try await skipper.enqueue(kind: "noop", options: JobOptions(uniqueKey: "u"))
                #expect(twin.inserted)
                _ = try await store.finish([Finished(claim: job.claim, outcome: .failed(error: "boom", retryDelay: .seconds(60), permanent: false))], runnerID: "r")
                #expect(try await db.scalar("SELECT status || ' ' || (run_at > now() + interval '50 seconds') || ' ' || (unique_key IS NULL) FROM skipper.jobs WHERE id = \(id)") == "QUEUED true true")
                try await db.query("UPDATE skipper.jobs SET run_at = now() WHERE id = \(id)")
                try await db.query("UPDATE skipper.jobs SET run_at = now() + interval '1 hour' WHERE id = \(twin.id)")
                job = try #require(try await self.claim(store, db, "r", limit: 1).first)
                #expect(job.attempt == 2)
                _ = try await store.finish([Finished(claim: job.claim, outcome: .failed(error: "boom again", retryDelay: .seconds(1), permanent: false))], runnerID: "r")
                #expect(try await db.scalar("SELECT status || ' ' || jsonb_array_length(errors) || ' ' || (errors->1->>'error') FROM skipper.jobs WHERE id = \(id)") == "FAILED 2 boom again")
            }
        }
    }
}

extension TestDatabase {
    /// Registers (or renews) a live runner row, so that `id` may claim.
    func liveRunner(_ id: String, lease: Duration = .seconds(60)) async throws {
        try await self.query(
            """
            INSERT INTO skipper.runners (id, host, pid, queues, kinds, concurrency, lease_ms)
            VALUES (\(id), 'test', 1, '{default}', '{noop,sleep,fail}', 1, \(Int32(lease.components.seconds * 1000)))
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp()
            """)
    }
}
