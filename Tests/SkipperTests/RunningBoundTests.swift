import Foundation
import Logging
import PostgresNIO
import Testing
import TestSupport

@testable import Skipper

/// A queue's limits are dealt in shares to its runners (skipper.limit_shards), which claim within them without taking
/// turns or counting; a kind's concurrency limit keeps an upper bound of its RUNNING jobs (skipper.running_bounds).
/// Neither may ever let a limit be exceeded, or starve one.
@Suite struct RunningBoundTests {
    let logger = Logger(label: "test")

    func limited(
        _ store: JobStore, _ db: TestDatabase, _ max: Int, kinds: [String] = ["noop"], sharesFirst: Bool = true
    ) async throws -> Int {
        try await db.liveRunner("r")
        return try await store.claimLimited(queue: "default", kinds: kinds, runnerID: "r", limit: max, sharesFirst: sharesFirst).count
    }

    func running(_ db: TestDatabase) async throws -> String? {
        try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'RUNNING'")
    }

    /// Each share's room, by "scope runner".
    func room(_ db: TestDatabase) async throws -> [String: String] {
        let rows = try await db.query("SELECT scope || ' ' || runner, room FROM skipper.limit_shards")
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0] ?? "", $0[1] ?? "") })
    }

    func finishRunning(_ db: TestDatabase) async throws {
        try await db.query("UPDATE skipper.jobs SET status = 'COMPLETED', finished_at = now() WHERE status = 'RUNNING'")
    }

    /// A runner's share of a concurrency limit: claims within it take from it without counting; the claim it cannot
    /// hold counts, takes what the limit really allows (the jobs finished meanwhile), and deals what is left again.
    @Test func aShareIsTakenByClaimsAndTheClaimItCannotHoldCounts() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<40).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, concurrency) VALUES ('default', 10)")
                #expect(try await self.limited(skipper.store, db, 4) == 4)
                #expect(try await self.room(db) == ["queue default r": "6"])
                #expect(try await self.limited(skipper.store, db, 4) == 4)
                #expect(try await self.room(db) == ["queue default r": "2"])
                // Room for 2 by the share, and really: 2, and nothing more; no share left to deal.
                #expect(try await self.limited(skipper.store, db, 4) == 2)
                #expect(try await self.room(db) == [:])
                #expect(try await self.limited(skipper.store, db, 4) == 0)
                #expect(try await self.running(db) == "10")
                // Every job finished: the claim counts, and takes all it may.
                try await self.finishRunning(db)
                #expect(try await self.limited(skipper.store, db, 10) == 10)
                #expect(try await self.running(db) == "10")
            }
        }
    }

    /// While a queue has no concurrency limit the fast claim starts its jobs, which no share accounts for: lifting
    /// and setting the limit again must not bring back the shares from before.
    @Test func aLimitSetAgainCountsWhatRanWithoutIt() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<40).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, concurrency) VALUES ('default', 10)")
                #expect(try await self.limited(skipper.store, db, 3) == 3)
                #expect(try await self.room(db) == ["queue default r": "7"])
                try await db.query("UPDATE skipper.queues SET concurrency = NULL")
                #expect(try await self.room(db) == [:])
                #expect(try await skipper.store.claim(queues: ["default"], kinds: ["noop"], runnerID: "r", limit: 8).count == 8)
                try await db.query("UPDATE skipper.queues SET concurrency = 10")
                // 11 RUNNING: over the new limit, so nothing starts (the old share, 7, would have let 7 start).
                #expect(try await self.limited(skipper.store, db, 7) == 0)
                #expect(try await self.running(db) == "11")
                try await self.finishRunning(db)
                #expect(try await self.limited(skipper.store, db, 3) == 3)
                #expect(try await self.room(db) == ["queue default r": "7"])
                // Deleting the queue's row takes its shares back too.
                try await db.query("DELETE FROM skipper.queues")
                #expect(try await self.room(db) == [:])
            }
        }
    }

    /// Shares go to the live runners that serve the queue, equally; a runner whose lease ran out gets none, and its
    /// share is taken back at the next deal.
    @Test func sharesGoToTheQueuesLiveRunners() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<100).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, concurrency) VALUES ('default', 100)")
                try await db.liveRunner("r2")
                // Serving another queue: no share of this one.
                try await db.query("INSERT INTO skipper.runners (id, host, pid, queues, concurrency) VALUES ('elsewhere', 'test', 2, '{other}', 1)")
                #expect(try await self.limited(skipper.store, db, 10) == 10)
                #expect(try await self.room(db) == ["queue default r": "45", "queue default r2": "45"])
                try await db.query("UPDATE skipper.runners SET heartbeat_at = now() - interval '1 hour' WHERE id = 'r2'")
                // Past its share (45 - 10 - 30 = 5): counts, 50 RUNNING, and deals the 40 left to the one live runner.
                #expect(try await self.limited(skipper.store, db, 10) == 10)
                #expect(try await self.limited(skipper.store, db, 30) == 30)
                #expect(try await self.limited(skipper.store, db, 10) == 10)
                #expect(try await self.room(db) == ["queue default r": "40"])
                #expect(try await self.running(db) == "60")
            }
        }
    }

    /// A kind's limit keeps its bound the same way, across queues.
    @Test func aKindsLimitKeepsABoundAcrossQueues() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<10).map { _ in NewJob(kind: "noop") })
                _ = try await skipper.enqueueMany((0..<10).map { _ in NewJob(kind: "noop", options: JobOptions(queue: "other")) })
                try await db.query("INSERT INTO skipper.kinds (kind, concurrency) VALUES ('noop', 6) ON CONFLICT (kind) DO UPDATE SET concurrency = 6")
                try await db.liveRunner("r")
                #expect(try await skipper.store.claimLimited(queue: "default", kinds: ["noop"], runnerID: "r", limit: 4).count == 4)
                #expect(try await db.scalar("SELECT running FROM skipper.running_bounds WHERE scope = 'kind noop'") == "4")
                #expect(try await skipper.store.claimLimited(queue: "other", kinds: ["noop"], runnerID: "r", limit: 4).count == 2)
                #expect(try await self.running(db) == "6")
                try await db.query("UPDATE skipper.kinds SET concurrency = NULL")
                #expect(try await db.scalar("SELECT count(*) FROM skipper.running_bounds") == "0")
            }
        }
    }

    /// Far from its limits, a claim of a queue limited as a whole no longer takes the queue's turn: with another
    /// session holding the queue's lock (as a counting claim does), it still claims at once, from its shares.
    @Test func aClaimFarFromTheLimitDoesNotWaitForTheQueuesTurn() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<40).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, concurrency, rate_limit, rate_period) VALUES ('default', 100, 1000, '1 minute')")
                // The first claim counts, under the lock, and deals what is left of both limits.
                #expect(try await self.limited(skipper.store, db, 4) == 4)
                #expect(try await self.room(db) == ["queue default r": "96", "queue-rate default r": "996"])
                try await TestServer.withConnection(to: db.config) { holder in
                    _ = try await TestServer.rows(of: "BEGIN", on: holder)
                    _ = try await TestServer.rows(of: "SELECT pg_advisory_xact_lock(hashtextextended('skipper.queue default', 0))", on: holder)
                    let claimed = try await abandoningAfter(.seconds(5)) { try await self.limited(skipper.store, db, 4) }
                    #expect(claimed == 4)
                    _ = try await TestServer.rows(of: "ROLLBACK", on: holder)
                }
                #expect(try await self.room(db) == ["queue default r": "92", "queue-rate default r": "992"])
                #expect(try await self.running(db) == "8")
                #expect(try await db.scalar("SELECT sum(jobs) FROM skipper.rate_starts") == "8")
            }
        }
    }

    /// A claim from the shares whose share is being dealt again waits for the deal, then takes its turn as the new
    /// share cannot hold it: it counts, and deals again. The runner's statement (`sharesFirst`) waits for its share's
    /// row before it takes a job; the function's own fast path takes its jobs first, and is undone when it finds the
    /// room gone.
    @Test(arguments: [true, false]) func aClaimWhoseShareIsDealtAgainCountsInstead(sharesFirst: Bool) async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<40).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, concurrency) VALUES ('default', 10)")
                #expect(try await self.limited(skipper.store, db, 2) == 2)
                #expect(try await self.room(db) == ["queue default r": "8"])
                try await TestServer.withConnection(to: db.config) { holder in
                    _ = try await TestServer.rows(of: "BEGIN", on: holder)
                    // What a counting claim does: take the queue's turn, lock the shares, and deal (here: little).
                    _ = try await TestServer.rows(of: "SELECT pg_advisory_xact_lock(hashtextextended('skipper.queue default', 0))", on: holder)
                    _ = try await TestServer.rows(of: "UPDATE skipper.limit_shards SET room = 1", on: holder)
                    let claim = Task { try await self.limited(skipper.store, db, 4, sharesFirst: sharesFirst) }
                    // The claim did not wait for the turn: it waits for its share's row (a transaction lock, not the
                    // advisory one).
                    let statement = sharesFirst ? "%FROM skipper.limit_shards s, q%" : "%claim_limited%"
                    #expect(try await eventually(timeout: .seconds(10)) {
                        try await db.scalar(
                            """
                            SELECT count(*) FROM pg_stat_activity
                            WHERE wait_event = 'transactionid' AND query LIKE \(statement) AND datname = current_database()
                              AND pid <> pg_backend_pid()
                            """) == "1"
                    })
                    // Nothing taken while it waits (the statement holds no job; the function's jobs are not committed).
                    #expect(try await self.running(db) == "2")
                    _ = try await TestServer.rows(of: "COMMIT", on: holder)
                    // Undone (room 1 < 4), then counted: 2 RUNNING, room for 8, its 4 taken, and 4 dealt.
                    #expect(try await claim.value == 4)
                }
                #expect(try await self.running(db) == "6")
                #expect(try await self.room(db) == ["queue default r": "4"])
            }
        }
    }

    /// A rate limit's share is room for starts: claims within it take from it, the claim it cannot hold counts the
    /// window again, and the budget is never overspent.
    @Test func aRateLimitIsDealtAsRoomForStarts() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<40).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, rate_limit, rate_period) VALUES ('default', 10, '1 minute')")
                #expect(try await self.limited(skipper.store, db, 3) == 3)
                #expect(try await self.limited(skipper.store, db, 3) == 3)
                #expect(try await self.limited(skipper.store, db, 3) == 3)
                #expect(try await self.room(db) == ["queue-rate default r": "1"])
                // Finished jobs free no rate: one more start in this minute, then none.
                try await self.finishRunning(db)
                #expect(try await self.limited(skipper.store, db, 3) == 1)
                #expect(try await self.limited(skipper.store, db, 3) == 0)
                #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE started_at IS NOT NULL") == "10")
                // Raised, the limit is counted again: 10 started, 5 more, room for 85.
                try await db.query("UPDATE skipper.queues SET rate_limit = 100")
                #expect(try await self.limited(skipper.store, db, 5) == 5)
                #expect(try await self.room(db) == ["queue-rate default r": "85"])
                // Lowered below what started, the share is taken back: no claim may trust its room of 85.
                try await db.query("UPDATE skipper.queues SET rate_limit = 12")
                #expect(try await self.room(db) == [:])
                #expect(try await self.limited(skipper.store, db, 5) == 0)
                #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE started_at IS NOT NULL") == "15")
            }
        }
    }

    /// A share is taken only by a claim that read the limits it was dealt under: one left from other limits (a limit
    /// added while a claim was under way, and the shares dealt again) makes the claim count instead.
    @Test func aShareDealtUnderOtherLimitsIsNotUsed() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<40).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, rate_limit, rate_period) VALUES ('default', 100, '1 hour')")
                #expect(try await self.limited(skipper.store, db, 4) == 4)
                let rateOnly = try #require(try await db.scalar("SELECT dealt_for FROM skipper.limit_shards"))
                try await db.query("UPDATE skipper.queues SET concurrency = 10")
                // Shares for both limits, as if dealt under the rate alone: room for 50 each.
                try await db.query(
                    """
                    INSERT INTO skipper.limit_shards (scope, runner, room, dealt_for, dealt_at)
                    VALUES ('queue default', 'r', 50, \(rateOnly), now()), ('queue-rate default', 'r', 50, \(rateOnly), now())
                    """)
                // Counted instead: 4 RUNNING of 10, so 6 more, not 10.
                #expect(try await self.limited(skipper.store, db, 10) == 6)
                #expect(try await self.running(db) == "10")
                #expect(try await db.scalar("SELECT count(*) FROM skipper.limit_shards WHERE dealt_for = \(rateOnly)") == "0")
            }
        }
    }

    /// A share is room under the queue's limits only: once a kind the claim takes is limited, the runner's shares are
    /// not used for it, however much room they have; the claim counts the kind's limit.
    @Test func aKindLimitedAfterTheDealIsNotTakenFromTheShares() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<40).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, concurrency) VALUES ('default', 100)")
                #expect(try await self.limited(skipper.store, db, 4) == 4)
                #expect(try await self.room(db) == ["queue default r": "96"])
                try await db.query("INSERT INTO skipper.kinds (kind, concurrency) VALUES ('noop', 6)")
                #expect(try await self.limited(skipper.store, db, 10) == 2)
                #expect(try await self.limited(skipper.store, db, 10) == 0)
                #expect(try await self.running(db) == "6")
            }
        }
    }
}
