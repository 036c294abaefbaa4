import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The enqueue client for any Swift program: insert jobs alone, in bulk, or inside your own transaction.
///
/// Wake-ups are debounced: after inserts commit, at most one `NOTIFY skipper_jobs` per queue per window is sent,
/// never inside the insert transactions (PostgreSQL serialises the commits of notifying transactions). The client is
/// a `Service` whose `run()` sends them: put it in your ServiceGroup after the Postgres client. Without it, runners
/// still find new jobs at their next poll (`POLL_INTERVAL`, 1 s).
public final class SkipperClient: Service, Sendable {
    /// Every statement of the queue.
    public let store: JobStore
    private let notifier: WakeupNotifier
    private let batcher: SubmitBatcher

    /// A client on `postgres` (which must be running, e.g. in your ServiceGroup); `prepared` false when `postgres`
    /// goes through a transaction-pooling PgBouncer (``DatabaseConfig/pooled``).
    public init(postgres: PostgresClient, logger: Logger, notifyWindow: Duration = .milliseconds(3), prepared: Bool = true) {
        self.store = JobStore(client: postgres, logger: logger, prepared: prepared, pooled: !prepared)
        self.notifier = WakeupNotifier(store: self.store, window: notifyWindow, logger: logger)
        self.batcher = SubmitBatcher(store: self.store)
    }

    /// Sends the debounced wake-ups until graceful shutdown, then the last pending ones.
    public func run() async throws {
        await self.notifier.run()
    }

    /// Enqueues one job with `Encodable` arguments.
    @discardableResult
    public func enqueue<Args: Encodable>(kind: String, args: Args, options: JobOptions = JobOptions()) async throws -> EnqueuedJob {
        try await self.enqueue(kind: kind, argsJSON: try Self.encode(args), options: options)
    }

    /// Enqueues one job with arguments given as JSON text (an object).
    @discardableResult
    public func enqueue(kind: String, argsJSON: String = "{}", options: JobOptions = JobOptions()) async throws -> EnqueuedJob {
        let options = options.withCurrentTrace()
        guard options.uniqueKey == nil else {
            let job = try await self.store.insert(kind: kind, args: argsJSON, options: options, on: nil)
            if job.inserted { self.notifier.inserted(queue: options.queue) }
            return job
        }
        // The first job after a quiet moment carries its queue's wake-up in its own INSERT: runners hear of it at the
        // commit, a round trip sooner. In a burst the others share the debounced wake-up.
        let notify = self.notifier.takeImmediate(queue: options.queue)
        let id: Int64
        do {
            id = try await self.store.insertKeyless(kind: kind, args: argsJSON, options: options, notify: notify)
        } catch {
            if notify { self.notifier.inserted(queue: options.queue) }
            throw error
        }
        if !notify { self.notifier.inserted(queue: options.queue) }
        return EnqueuedJob(id: id, inserted: true)
    }

    /// Enqueues one job and returns its row once it has committed (the API's submit). Without a unique key,
    /// submissions made concurrently share one INSERT and one commit (``SubmitBatcher``); with one, a QUEUED job
    /// holding the key is returned instead (`inserted` false).
    public func submit(kind: String, argsJSON: String, options: JobOptions) async throws -> (job: EnqueuedJob, record: JobRecord) {
        let options = options.withCurrentTrace()
        let submitted: (job: EnqueuedJob, record: JobRecord)
        if options.uniqueKey != nil {
            submitted = try await self.store.submitUnique(kind: kind, args: argsJSON, options: options)
        } else {
            let record = try await self.batcher.submit(NewJob(kind: kind, args: argsJSON, options: options))
            submitted = (EnqueuedJob(id: record.id, inserted: true), record)
        }
        if submitted.job.inserted { self.notifier.inserted(queue: options.queue) }
        return submitted
    }

    /// Puts a FAILED or CANCELLED job back to QUEUED with a fresh attempt budget, and wakes runners of its queue.
    public func retry(id: Int64) async throws -> RetryOutcome {
        let outcome = try await self.store.retry(id: id)
        if case .queued(let job) = outcome { self.notifier.inserted(queue: job.queue) }
        return outcome
    }

    /// Enqueues many jobs with one statement; returns the ids inserted (unique-key duplicates are skipped).
    @discardableResult
    public func enqueueMany(_ jobs: [NewJob]) async throws -> [Int64] {
        var jobs = jobs
        for index in jobs.indices { jobs[index].options = jobs[index].options.withCurrentTrace() }
        let ids = try await self.store.insertMany(jobs, on: nil)
        for queue in Set(jobs.map(\.options.queue)) { self.notifier.inserted(queue: queue) }
        return ids
    }

    /// An enqueuer bound to `connection`, for a transaction you manage yourself: its jobs commit or roll back with
    /// your rows. After your COMMIT, call ``notifyInserted(queues:)`` with its ``TransactionEnqueuer/queues`` to wake
    /// runners at once (else they find the jobs at their next poll); ``withTransaction(_:)`` does all of this for you.
    public func enqueuer(on connection: PostgresConnection) -> TransactionEnqueuer {
        TransactionEnqueuer(store: self.store, connection: connection)
    }

    /// Runs `body` in a transaction on a pooled connection; after COMMIT, wakes runners of the queues enqueued to.
    public func withTransaction<T: Sendable>(
        _ body: @Sendable (_ connection: PostgresConnection, _ enqueue: TransactionEnqueuer) async throws -> T
    ) async throws -> T {
        let touched = Mutex<Set<String>>([])
        let result: T
        do {
            result = try await self.store.client.withTransaction(logger: self.store.logger) { connection in
                let enqueuer = self.enqueuer(on: connection)
                defer { touched.withLock { $0.formUnion(enqueuer.queues) } }
                return try await body(connection, enqueuer)
            }
        } catch let error as PostgresTransactionError {
            // The caller's own error, once rolled back, is more useful than postgres-nio's wrapper.
            if let closureError = error.closureError, error.rollbackError == nil { throw closureError }
            throw error
        }
        for queue in touched.withLock({ $0 }) { self.notifier.inserted(queue: queue) }
        return result
    }

    /// Wakes runners of `queues` (debounced): for callers that enqueued inside their own transaction.
    public func notifyInserted(queues: [String]) {
        for queue in queues { self.notifier.inserted(queue: queue) }
    }

    /// Cancels a job (see ``JobStore/cancel(id:)``).
    public func cancel(id: Int64) async throws -> CancelOutcome {
        try await self.store.cancel(id: id)
    }

    static func encode<Args: Encodable>(_ args: Args) throws -> String {
        String(decoding: try JSONEncoder().encode(args), as: UTF8.self)
    }
}

/// Enqueues on one connection, inside the transaction open there (``SkipperClient/withTransaction(_:)`` or your
/// own), and remembers the queues to wake after the commit.
public final class TransactionEnqueuer: Sendable {
    let store: JobStore
    /// The connection whose transaction the jobs join.
    public let connection: PostgresConnection
    private let touched = Mutex<Set<String>>([])

    init(store: JobStore, connection: PostgresConnection) {
        self.store = store
        self.connection = connection
    }

    /// The queues jobs were inserted into, to wake after the commit.
    public var queues: Set<String> { self.touched.withLock { $0 } }

    /// Enqueues one job with `Encodable` arguments in the transaction.
    @discardableResult
    public func enqueue<Args: Encodable>(kind: String, args: Args, options: JobOptions = JobOptions()) async throws -> EnqueuedJob {
        try await self.enqueue(kind: kind, argsJSON: try SkipperClient.encode(args), options: options)
    }

    /// Enqueues one job with arguments given as JSON text in the transaction. With a unique key that a QUEUED job
    /// already has, returns that job (`inserted` false).
    @discardableResult
    public func enqueue(kind: String, argsJSON: String = "{}", options: JobOptions = JobOptions()) async throws -> EnqueuedJob {
        let options = options.withCurrentTrace()
        let job = try await self.store.insert(kind: kind, args: argsJSON, options: options, on: self.connection)
        if job.inserted { _ = self.touched.withLock { $0.insert(options.queue) } }
        return job
    }
}

/// Sends at most one wake-up per queue per window (the first at once), after the inserts that asked for it: a loop of the client's
/// service, so nothing runs detached.
final class WakeupNotifier: Sendable {
    let store: JobStore
    let window: Duration
    let logger: Logger
    private struct State {
        var pending: Set<String> = []
        /// When the last wake-up went out (by this loop or inside an insert).
        var lastSent: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let wake = WakeSignal()

    init(store: JobStore, window: Duration, logger: Logger) {
        self.store = store
        self.window = window
        self.logger = logger
    }

    func inserted(queue: String) {
        let first = self.state.withLock { $0.pending.insert(queue).inserted && $0.pending.count == 1 }
        if first { self.wake.signal() }
    }

    /// Whether an insert into `queue` may send the wake-up itself: nothing is pending and none went out within the
    /// window (a quiet moment). It then counts as sent.
    func takeImmediate(queue: String) -> Bool {
        self.state.withLock { state in
            guard state.pending.isEmpty, state.lastSent.map({ ContinuousClock.now >= $0 + self.window }) ?? true else { return false }
            state.lastSent = .now
            return true
        }
    }

    func run() async {
        await withGracefulShutdownHandler {
            // The first insert after a quiet moment is announced at once; later ones wait for the window since the
            // last wake-up, so a burst still costs one NOTIFY per window. (Waiting the window before every wake-up
            // added it to every lone job's pickup latency.)
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await self.wake.wait(timeout: .seconds(60))
                if let lastSent = self.state.withLock({ $0.lastSent }), ContinuousClock.now < lastSent + self.window {
                    try? await Task.sleep(until: lastSent + self.window)
                }
                await self.send()
            }
        } onGracefulShutdown: {
            self.wake.signal()
        }
        await self.send()
    }

    private func send() async {
        let queues = self.state.withLock { state -> [String] in
            defer { state.pending.removeAll() }
            if !state.pending.isEmpty { state.lastSent = .now }
            return Array(state.pending)
        }
        guard !queues.isEmpty else { return }
        do {
            try await self.store.notifyInserted(queues: queues)
        } catch {
            // Runners poll; a lost wake-up delays jobs by at most the poll interval.
            self.logger.debug("wake-up notification failed", metadata: ["error": "\(describe(error))"])
        }
    }
}
