import Foundation
import Logging
import PostgresNIO
import Skipper
import Synchronization

/// One progress report of a handler.
public struct ProgressReport: Sendable, Equatable {
    public let processed: Int64
    public let total: Int64?

    public init(processed: Int64, total: Int64?) {
        self.processed = processed
        self.total = total
    }
}

/// How one attempt of a handler ended, as the runner would record it.
public enum HandlerOutcome<Output: Sendable>: Sendable {
    /// Returned; nil for no result.
    case completed(Output?)
    /// Threw (a `JobError`, an `ArgumentsError` for arguments the handler refuses, or anything else).
    case failed(any Error)
    /// Stopped by its cancellation (`cancelAfter`): the runner records the job CANCELLED.
    case cancelled
}

/// One attempt of a handler run by ``HandlerTester``: its outcome and every progress report, in order.
public struct HandlerRun<Output: Sendable>: Sendable {
    public let outcome: HandlerOutcome<Output>
    public let progress: [ProgressReport]

    /// The output when the attempt completed.
    public var output: Output? {
        if case .completed(let output) = self.outcome { return output }
        return nil
    }

    /// The error when the attempt failed.
    public var error: (any Error)? {
        if case .failed(let error) = self.outcome { return error }
        return nil
    }

    public var wasCancelled: Bool {
        if case .cancelled = self.outcome { return true }
        return false
    }
}

/// Runs one attempt of a handler the way a runner does, without a runner or a queue, for unit tests: the arguments go
/// through JSON and the handler's `check` (as a row's `args` would), progress reports are recorded, and cancelling
/// the attempt (`cancelAfter`) cancels its task, as a cancel request does.
///
/// ```swift
/// let run = await HandlerTester.run(Resize(), args: .init(url: "https://..."), cancelAfter: .seconds(1))
/// #expect(run.wasCancelled)
/// ```
public enum HandlerTester {
    /// Why a run ended without an outcome: it took longer than `timeout` (a handler querying a `postgres` that is
    /// not running waits forever).
    public struct TimedOut: Error, CustomStringConvertible {
        public let after: Duration
        public var description: String { "the handler did not end within \(self.after)" }
    }

    /// Runs `handler` on `args`. `postgres` is the client its context offers (pass a running one if the handler
    /// queries); without one the context holds a client that never connects.
    public static func run<Handler: JobHandler>(
        _ handler: Handler, args: Handler.Args, attempt: Int32 = 1, maxAttempts: Int32 = 3, postgres: PostgresClient? = nil,
        cancelAfter: Duration? = nil, timeout: Duration = .seconds(60), logger: Logger = Logger(label: "skipper.testing")
    ) async -> HandlerRun<Handler.Output> where Handler.Args: Encodable {
        let json: String
        do {
            json = String(decoding: try JSONEncoder().encode(args), as: UTF8.self)
        } catch {
            return HandlerRun(outcome: .failed(error), progress: [])
        }
        return await self.run(
            handler, argsJSON: json, attempt: attempt, maxAttempts: maxAttempts, postgres: postgres, cancelAfter: cancelAfter,
            timeout: timeout, logger: logger)
    }

    /// Runs `handler` on arguments given as JSON text, as a row's `args` holds them.
    public static func run<Handler: JobHandler>(
        _ handler: Handler, argsJSON: String, attempt: Int32 = 1, maxAttempts: Int32 = 3, postgres: PostgresClient? = nil,
        cancelAfter: Duration? = nil, timeout: Duration = .seconds(60), logger: Logger = Logger(label: "skipper.testing")
    ) async -> HandlerRun<Handler.Output> {
        let reports = Mutex<[ProgressReport]>([])
        let context = JobContext.forTesting(
            kind: Handler.kind, attempt: attempt, maxAttempts: maxAttempts, logger: logger, postgres: postgres ?? Self.idleClient,
            onProgress: { processed, total in reports.withLock { $0.append(ProgressReport(processed: processed, total: total)) } })
        let attemptTask = Task { () throws -> Handler.Output? in
            // What the runner does with a row: the same decoding and checks, then the handler, then its output as JSON.
            try AnyJobHandler(handler).validate(argsJSON)
            let args = try JSONDecoder().decode(Handler.Args.self, from: Data(argsJSON.utf8))
            let output = try await handler.run(args, context: context)
            if let output { _ = try JSONEncoder().encode(output) }
            return output
        }
        let cancelled = Atomic<Bool>(false)
        let timedOut = Atomic<Bool>(false)
        let started = ContinuousClock.now
        // The cancel and the time limit, whichever comes first.
        let watcher = Task {
            if let cancelAfter, cancelAfter < timeout {
                try? await Task.sleep(until: started + cancelAfter)
                if Task.isCancelled { return }
                cancelled.store(true, ordering: .relaxed)
                attemptTask.cancel()
            }
            try? await Task.sleep(until: started + timeout)
            if Task.isCancelled { return }
            timedOut.store(true, ordering: .relaxed)
            attemptTask.cancel()
        }
        // Cancelling the test cancels the attempt too.
        let result = await withTaskCancellationHandler { await attemptTask.result } onCancel: { attemptTask.cancel() }
        watcher.cancel()
        let progress = reports.withLock { $0 }
        switch result {
        case .success(let output):
            return HandlerRun(outcome: .completed(output), progress: progress)
        case .failure(let error):
            // As the runner: an attempt that throws after its cancellation was cancelled, whatever it threw.
            if cancelled.load(ordering: .relaxed) { return HandlerRun(outcome: .cancelled, progress: progress) }
            if timedOut.load(ordering: .relaxed) { return HandlerRun(outcome: .failed(TimedOut(after: timeout)), progress: progress) }
            return HandlerRun(outcome: .failed(error), progress: progress)
        }
    }

    /// A client that is never run: a handler's queries on it wait (until the run's timeout).
    static let idleClient = PostgresClient(
        configuration: .init(host: "127.0.0.1", port: 9, username: "none", password: nil, database: "none", tls: .disable))
}
