import Foundation
import Logging
import PostgresNIO
import SkipperTesting
import Testing
import TestSupport

@testable import Skipper

/// A handler of an application's own, as its tests would exercise it with SkipperTesting.
struct CountTo: JobHandler {
    struct Args: Codable, Sendable {
        var n: Int
        var pauseMs: Int = 0
    }
    struct Output: Codable, Sendable, Equatable {
        var counted: Int
    }
    static let kind = "test.count-to"

    func check(_ args: Args) throws {
        guard args.n >= 0 else { throw ArgumentsError(field: "n", message: "must not be negative") }
    }

    func run(_ args: Args, context: JobContext) async throws -> Output? {
        for i in 1...max(args.n, 1) where args.n > 0 {
            try await Task.sleep(for: .milliseconds(args.pauseMs))
            context.progress(processed: Int64(i), total: Int64(args.n))
        }
        return Output(counted: args.n)
    }
}

/// JobContext had no public initializer: a handler could not be unit-tested without PostgreSQL and a runner.
@Suite struct SkipperTestingTests {
    @Test func aHandlerRunsWithoutARunnerWithItsProgressRecorded() async {
        let run = await HandlerTester.run(CountTo(), args: .init(n: 3))
        #expect(run.output == CountTo.Output(counted: 3))
        #expect(run.progress == [.init(processed: 1, total: 3), .init(processed: 2, total: 3), .init(processed: 3, total: 3)])
    }

    @Test func cancellingTheAttemptIsSeenAsTheRunnerWouldRecordIt() async {
        let started = ContinuousClock.now
        let run = await HandlerTester.run(CountTo(), args: .init(n: 1000, pauseMs: 50), cancelAfter: .milliseconds(200))
        #expect(run.wasCancelled)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(!run.progress.isEmpty && run.progress.count < 1000)
    }

    @Test func argumentsGoThroughJSONAndTheHandlersCheck() async {
        let refused = await HandlerTester.run(CountTo(), args: .init(n: -1))
        #expect((refused.error as? ArgumentsError)?.field == "n")
        let malformed = await HandlerTester.run(CountTo(), argsJSON: #"{"n": "three"}"#)
        #expect(malformed.error is ArgumentsError)
    }

    /// A runner in the test's process, waited on for one job.
    @Test func aRunnerInProcessRunsTheApplicationsKind() async throws {
        try await withTestDatabase { db in
            let configuration = db.config.clientConfiguration(maxConnections: 4, applicationName: "skipper-testing")
            let record = try await RunnerTester.with(configuration: configuration, handlers: [AnyJobHandler(CountTo())]) { runner in
                let job = try await runner.client.enqueue(kind: CountTo.kind, args: CountTo.Args(n: 5))
                return try await runner.waitForJob(job.id, timeout: .seconds(20))
            }
            #expect(record.status == .completed)
            #expect(record.result == #"{"counted": 5}"#)
            #expect(record.processed == 5 && record.total == 5)
            // Stopped with the body: its row is gone.
            #expect(try await db.scalar("SELECT count(*) FROM skipper.runners") == "0")
        }
    }
}

/// Arguments that are not a JSON object, which no runner's row may hold.
struct ListArgs: JobHandler {
    typealias Args = [Int]
    static let kind = "test.list-args"
    func run(_ args: Args, context: JobContext) async throws -> NoOutput? { nil }
}

struct Boom: JobHandler {
    struct Args: Codable, Sendable {}
    static let kind = "test.boom"
    func run(_ args: Args, context: JobContext) async throws -> NoOutput? { throw JobError.permanent("boom") }
}

/// The typed API: a kind tied to its arguments and result, checked at enqueue, awaited without polling SQL by hand.
@Suite struct TypedEnqueueTests {
    let logger = Logger(label: "test")

    /// Arguments the handler's own check refuses were enqueued through the library and the job COMPLETED anyway;
    /// now they are refused before anything is written, in or out of a transaction.
    @Test func argumentsTheHandlerRefusesAreNeverEnqueued() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                await #expect(throws: ArgumentsError.self) { _ = try await skipper.enqueue(CountTo(), .init(n: -1)) }
                await #expect(throws: ArgumentsError.self) { _ = try await skipper.enqueueMany(CountTo(), [.init(n: 1), .init(n: -2)]) }
                await #expect(throws: ArgumentsError.self) {
                    try await skipper.withTransaction { _, enqueue -> Void in
                        _ = try await enqueue.enqueue(CountTo(), .init(n: 2))
                        _ = try await enqueue.enqueue(CountTo(), .init(n: -3))
                    }
                }
                // Arguments that encode as an array were accepted until a runner failed them.
                await #expect(throws: ArgumentsError.self) { _ = try await skipper.enqueue(ListArgs(), [1, 2]) }
                let stored = try await db.scalar("SELECT count(*) FROM skipper.jobs")
                #expect(stored == "0")
            }
        }
    }

    @Test func aHandleAwaitsItsTypedResultItsFailureAndItsCancel() async throws {
        try await withTestDatabase { db in
            let configuration = db.config.clientConfiguration(maxConnections: 8, applicationName: "typed")
            try await RunnerTester.with(
                configuration: configuration,
                handlers: [AnyJobHandler(CountTo()), AnyJobHandler(Boom()), AnyJobHandler(BuiltIn.Noop())]
            ) { runner in
                let skipper = runner.client
                let awaited = JobOptions(announceFinish: true)
                let counted = try await skipper.enqueue(CountTo(), .init(n: 3), options: awaited)
                #expect(try await counted.result(timeout: .seconds(20)) == CountTo.Output(counted: 3))
                #expect(try await counted.status() == .completed)

                let boom = try await skipper.enqueue(Boom(), .init(), options: awaited)
                await #expect(throws: JobResultError.failed(id: boom.id, error: "boom")) { try await boom.result(timeout: .seconds(20)) }

                let long = try await skipper.enqueue(CountTo(), .init(n: 10_000, pauseMs: 20), options: awaited)
                #expect(try await eventually { try await long.status() == .running })
                #expect(try await long.cancel() == .requested)
                await #expect(throws: JobResultError.cancelled(id: long.id)) { try await long.result(timeout: .seconds(20)) }

                // A plain completion (no result, no progress) asked to be announced is: seen at once, with no look
                // at the job for a minute.
                let quick = try await skipper.enqueue(BuiltIn.Noop(), .init(), options: awaited)
                let asked = ContinuousClock.now
                #expect(try await quick.result(timeout: .seconds(20), lookEvery: .seconds(60)) == nil)
                #expect(ContinuousClock.now - asked < .seconds(3))
                // Not asked to be announced: seen by the look.
                let unannounced = try await skipper.enqueue(CountTo(), .init(n: 1))
                #expect(try await unannounced.result(timeout: .seconds(20), lookEvery: .milliseconds(200)) == CountTo.Output(counted: 1))
            }
        }
    }

    /// Waiters read on the connection they listen on: as many waiters as the pool has connections still end.
    @Test func asManyWaitersAsConnectionsDoNotStarveEachOther() async throws {
        try await withTestDatabase { db in
            try await db.withClient(maxConnections: 2) { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let first = try await skipper.enqueue(CountTo(), .init(n: 1))
                let second = try await skipper.enqueue(CountTo(), .init(n: 1))
                let started = ContinuousClock.now
                // No runner: both time out, each after its own 2 s, neither waiting for a connection the other holds.
                async let a = Result { try await first.result(timeout: .seconds(2)) }
                async let b = Result { try await second.result(timeout: .seconds(2)) }
                let outcomes = await [a, b]
                for outcome in outcomes {
                    guard case .failure(let error) = outcome else { Issue.record("no runner, yet a result"); continue }
                    #expect((error as? JobResultError).map { if case .timedOut = $0 { return true } else { return false } } == true, "\(error)")
                }
                #expect(ContinuousClock.now - started < .seconds(8))
            }
        }
    }

    @Test func waitingForAJobNobodyRunsTimesOutWithItsStatus() async throws {
        try await withTestDatabase { db in
            try await db.withClient { client in
                let skipper = SkipperClient(postgres: client, logger: self.logger)
                let handle = try await skipper.enqueue(CountTo(), .init(n: 1))
                await #expect(throws: JobResultError.timedOut(id: handle.id, status: .queued)) {
                    try await handle.result(timeout: .milliseconds(300))
                }
                await #expect(throws: JobResultError.notFound(id: 987_654)) {
                    try await skipper.handle(CountTo.self, id: 987_654).result(timeout: .seconds(1))
                }
            }
        }
    }
}
