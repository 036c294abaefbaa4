import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Skipper

/// A runner with `handlers` in this process, against a database a test prepared (migrated), for as long as a test
/// body runs: enqueue with ``client``, then ``waitForJob(_:timeout:)``. It stops (gracefully) when the body returns.
///
/// ```swift
/// try await RunnerTester.with(configuration: config, handlers: [AnyJobHandler(SendEmail())]) { runner in
///     let job = try await runner.client.enqueue(kind: SendEmail.kind, args: SendEmail.Args(to: "a@b.c"))
///     let record = try await runner.waitForJob(job.id)
///     #expect(record.status == .completed)
/// }
/// ```
public struct RunnerTester: Sendable {
    /// Enqueues, cancels, retries (a client of the same database).
    public let client: SkipperClient
    /// The runner's id (`skipper.runners.id`).
    public let runnerID: String

    /// Why ``waitForJob(_:timeout:)`` gave up.
    public struct JobDidNotFinish: Error, CustomStringConvertible {
        public let id: Int64
        public let status: JobStatus?
        public var description: String { "job \(self.id) did not finish in time (\(self.status.map { "\($0)" } ?? "not found"))" }
    }

    /// Runs a runner (with `config`, defaults unless given) and a client on `configuration`'s database during `body`.
    public static func with<T: Sendable>(
        configuration: PostgresClient.Configuration, handlers: [AnyJobHandler], config: RunnerConfig = RunnerConfig(),
        logger: Logger = Logger(label: "skipper.testing"), _ body: @Sendable (RunnerTester) async throws -> T
    ) async throws -> T {
        var pool = configuration
        pool.options.maximumConnections = max(pool.options.maximumConnections, config.workers + 6)
        let postgres = PostgresClient(configuration: pool, backgroundLogger: logger)
        var controlConfiguration = configuration
        controlConfiguration.options.maximumConnections = 2
        let control = PostgresClient(configuration: controlConfiguration, backgroundLogger: logger)
        let runner = try JobRunner(postgres: postgres, control: control, config: config, handlers: handlers, logger: logger)
        let client = SkipperClient(postgres: postgres, logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [postgres, control, client, runner], logger: logger))
        let running = Task { try await group.run() }
        defer { running.cancel() }
        let tester = RunnerTester(client: client, runnerID: runner.id)
        do {
            let result = try await body(tester)
            await group.triggerGracefulShutdown()
            try await running.value
            return result
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
    }

    /// Waits until job `id` is COMPLETED, FAILED or CANCELLED and returns it; throws ``JobDidNotFinish`` after
    /// `timeout`.
    public func waitForJob(_ id: Int64, timeout: Duration = .seconds(30)) async throws -> JobRecord {
        let deadline = ContinuousClock.now + timeout
        var last: JobRecord?
        while ContinuousClock.now < deadline {
            last = try await self.client.store.job(id: id)
            if let last, last.status.isFinished { return last }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw JobDidNotFinish(id: id, status: last?.status)
    }
}
