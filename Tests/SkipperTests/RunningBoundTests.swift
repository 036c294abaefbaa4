import Foundation
import Logging
import PostgresNIO
import Testing
import TestSupport

@testable import Skipper

/// A concurrency limit's claim reads an upper bound of the RUNNING jobs (skipper.running_bounds) instead of counting
/// them each time: it must never let a limit be exceeded, and never starve one.
@Suite struct RunningBoundTests {
    let logger = Logger(label: "test")

    func limited(_ store: JobStore, _ db: TestDatabase, _ max: Int, kinds: [String] = ["noop"]) async throws -> Int {
        try await db.liveRunner("r")
        return try await store.claimLimited(queue: "default", kinds: kinds, runnerID: "r", limit: max).count
    }

    func running(_ db: TestDatabase) async throws -> String? {
        try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE status = 'RUNNING'")
    }

    func finishRunning(_ db: TestDatabase) async throws {
        try await db.query("UPDATE skipper.jobs SET status = 'COMPLETED', finished_at = now() WHERE status = 'RUNNING'")
    }

    /// Claims far from the limit add to the bound without counting; once the bound would stop a claim, the claim
    /// counts again and takes what the limit really allows (the jobs finished meanwhile).
    @Test func aBoundIsRaisedByClaimsAndRecountedWhenItWouldStopOne() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<40).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, concurrency) VALUES ('default', 10)")
                #expect(try await self.limited(skipper.store, db, 4) == 4)
                #expect(try await db.scalar("SELECT running FROM skipper.running_bounds WHERE scope = 'queue default'") == "4")
                #expect(try await self.limited(skipper.store, db, 4) == 4)
                #expect(try await db.scalar("SELECT running FROM skipper.running_bounds WHERE scope = 'queue default'") == "8")
                // At the limit by the bound, and really: nothing more.
                #expect(try await self.limited(skipper.store, db, 4) == 2)
                #expect(try await self.limited(skipper.store, db, 4) == 0)
                #expect(try await self.running(db) == "10")
                // Every job finished: the bound (10) would stop the claim, so it counts, and takes all it may.
                try await self.finishRunning(db)
                #expect(try await self.limited(skipper.store, db, 10) == 10)
                #expect(try await self.running(db) == "10")
            }
        }
    }

    /// While a queue has no concurrency limit the fast claim starts its jobs, which no bound counts: lifting and
    /// setting the limit again must not bring back the bound from before.
    @Test func aLimitSetAgainCountsWhatRanWithoutIt() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<40).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, concurrency) VALUES ('default', 10)")
                #expect(try await self.limited(skipper.store, db, 3) == 3)
                try await db.query("UPDATE skipper.queues SET concurrency = NULL")
                #expect(try await db.scalar("SELECT count(*) FROM skipper.running_bounds") == "0")
                #expect(try await skipper.store.claim(queues: ["default"], kinds: ["noop"], runnerID: "r", limit: 8).count == 8)
                try await db.query("UPDATE skipper.queues SET concurrency = 10")
                // 11 RUNNING: over the new limit, so nothing starts (the old bound, 3, would have let 7 start).
                #expect(try await self.limited(skipper.store, db, 10) == 0)
                #expect(try await self.running(db) == "11")
                // Deleting the queue's row forgets it too.
                try await db.query("DELETE FROM skipper.queues")
                #expect(try await db.scalar("SELECT count(*) FROM skipper.running_bounds") == "0")
            }
        }
    }

    /// A bound that is too low (a claim that raced a change of the limit started jobs it did not count) lasts at
    /// most a second: an older bound is counted again.
    @Test func aBoundOlderThanASecondIsCountedAgain() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                _ = try await skipper.enqueueMany((0..<20).map { _ in NewJob(kind: "noop") })
                try await db.query("INSERT INTO skipper.queues (name, concurrency) VALUES ('default', 5)")
                #expect(try await self.limited(skipper.store, db, 3) == 3)
                try await db.query("UPDATE skipper.running_bounds SET running = 0, counted_at = now() - interval '2 seconds'")
                #expect(try await self.limited(skipper.store, db, 5) == 2)
                #expect(try await self.running(db) == "5")
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
}
