import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Shop
import Skipper

/// skipper-test-runner: skipper-runner's kinds plus `trace`, for tests about executions (chaos, stalled leases).
/// It is also a program that embeds the library's runner with a handler of its own, as an application would.
@main
struct TestRunner {
    static func main() async throws {
        let config = try SkipperConfig()
        let runnerConfig = try RunnerConfig.fromEnvironment()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = config.logLevel
            return handler
        }
        let logger = Logger(label: "skipper.test-runner")
        exitWithParent()
        let postgres = PostgresClient(
            configuration: config.database.clientConfiguration(maxConnections: runnerConfig.workers + 6, applicationName: "skipper-test-runner"),
            backgroundLogger: logger)
        let control = PostgresClient(
            configuration: config.database.clientConfiguration(
                maxConnections: 2, applicationName: "skipper-test-runner-control", statementTimeout: runnerConfig.heartbeatInterval),
            backgroundLogger: logger)
        let handlers = BuiltIn.handlers + Shop.handlers(batchSize: runnerConfig.batchSize) + [
            AnyJobHandler(Trace()), AnyJobHandler(Hold()), AnyJobHandler(Snooze()), AnyJobHandler(Stubborn()), AnyJobHandler(Timed()),
        ]
        let runner = try JobRunner(postgres: postgres, control: control, config: runnerConfig, handlers: handlers, logger: logger)
        var group = ServiceGroupConfiguration(
            services: [postgres, control, runner], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = runnerConfig.shutdownGrace + .seconds(15)
        try await ServiceGroup(configuration: group).run()
    }
}

/// A test that is killed (a timeout) cannot stop its runners: they exit when their parent does, rather than live on
/// against a database that is gone.
func exitWithParent() {
    let parent = getppid()
    Thread.detachNewThread {
        while getppid() == parent { sleep(1) }
        FileHandle.standardError.write(Data("skipper-test-runner: the test process is gone; exiting\n".utf8))
        exit(3)
    }
}

/// `trace {"ms": N}`: records its execution in the test's table `executions` (job, lease, runner process, start and
/// end by the server's clock), sleeping N ms between, cancellable. The end is recorded however the execution ends.
/// Holds `connections` pooled connections at once, each running `pg_sleep(seconds)` through the context (cancelled on
/// the server when the job is): a job that can take every connection of the runner's pool.
struct Hold: JobHandler {
    struct Args: Codable, Sendable {
        var connections: Int
        var seconds: Double
    }
    static let kind = "hold"

    func run(_ args: Args, context: JobContext) async throws -> NoOutput? {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<args.connections {
                group.addTask {
                    try await context.withConnection { connection in
                        try await connection.query("SELECT pg_sleep(\(args.seconds))", logger: context.logger).collect()
                    }
                    return
                }
            }
            try await group.waitForAll()
        }
        return nil
    }
}

struct Trace: JobHandler {
    struct Args: Codable, Sendable {
        var ms: Int
    }
    static let kind = "trace"

    func run(_ args: Args, context: JobContext) async throws -> NoOutput? {
        let pid = Int32(ProcessInfo.processInfo.processIdentifier)
        let claim = context.claim
        do {
            // Its answer can be lost after it committed (a connection cut): the end is recorded in any case.
            // Each statement abandoned after 5 s: one sent as its connection is terminated can wait forever for an
            // answer in postgres-nio, and the execution would never end.
            let postgres = context.postgres, logger = context.logger
            try await abandoningAfter(.seconds(5)) {
                try await postgres.query(
                    """
                    INSERT INTO executions (job_id, lease, pid, started_at) VALUES (\(claim.jobID), \(claim.lease), \(pid), clock_timestamp())
                    """,
                    logger: logger)
            }
            try await Task.sleep(for: .milliseconds(args.ms))
            await Self.ended(claim, context: context)
            return nil
        } catch {
            await Self.ended(claim, context: context)
            throw error
        }
    }

    /// Records the end, outside the (maybe cancelled) task, trying again while PostgreSQL is away (a minute).
    static func ended(_ claim: Claim, context: JobContext) async {
        await Task.detached {
            for attempt in 1...300 {
                do {
                    let postgres = context.postgres, logger = context.logger
                    _ = try await abandoningAfter(.seconds(5)) {
                        try await postgres.query(
                            "UPDATE executions SET ended_at = clock_timestamp() WHERE job_id = \(claim.jobID) AND lease = \(claim.lease) AND ended_at IS NULL",
                            logger: logger)
                    }
                    return
                } catch {
                    context.logger.warning("could not record the end of an execution", metadata: ["attempt": "\(attempt)"])
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
        }.value
    }
}

/// `snooze {"times": N, "ms": M}`: snoozes its first N runs for M ms each (it reads its own `snoozed` count), then
/// completes with the count it saw.
struct Snooze: JobHandler {
    struct Args: Codable, Sendable {
        var times: Int
        var ms: Int
    }
    struct Output: Codable, Sendable {
        var snoozed: Int
    }
    static let kind = "snooze"

    func run(_ args: Args, context: JobContext) async throws -> Output? {
        let snoozed = try await context.withConnection { connection -> Int in
            let rows = try await connection.query("SELECT snoozed FROM skipper.jobs WHERE id = \(context.jobID)", logger: context.logger)
            for try await count in rows.decode(Int32.self) { return Int(count) }
            return -1
        }
        if snoozed < args.times { throw JobError.snooze(.milliseconds(args.ms)) }
        return Output(snoozed: snoozed)
    }
}

/// `stubborn {"ms": N}`: runs N ms and ignores cancellation (a handler that never checks it).
struct Stubborn: JobHandler {
    struct Args: Codable, Sendable {
        var ms: Int
    }
    static let kind = "stubborn"

    func run(_ args: Args, context: JobContext) async throws -> NoOutput? {
        // A wait that cancellation does not end (and that holds no thread meanwhile).
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(args.ms)) { done.resume() }
        }
        return nil
    }
}

/// `timed {"ms": N}`: sleeps N ms (cancellable); its kind's time limit is 500 ms.
struct Timed: JobHandler {
    struct Args: Codable, Sendable {
        var ms: Int
    }
    static let kind = "timed"
    var timeout: Duration? { .milliseconds(500) }

    func run(_ args: Args, context: JobContext) async throws -> NoOutput? {
        try await Task.sleep(for: .milliseconds(args.ms))
        return nil
    }
}
