import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Holds one connection with `LISTEN skipper_jobs` (wake-ups) and `LISTEN skipper_cancel` (cancel requests),
/// and reconnects by itself. Notifications are hints: polling and the cancel sweep are the floor.
struct Listener: Service {
    let client: PostgresClient
    let executor: Executor
    let sweeper: CancelSweeper
    let queues: Set<String>
    let logger: Logger

    func run() async throws {
        await self.executor.gate.waitForStart()
        guard self.executor.gate.isOpen else { return }
        // Cancelled on shutdown also while it waits for a connection (the database down): a wait that never ends
        // would hold up every service stopping after it.
        await cancelWhenGracefulShutdown { await self.listen() }
    }

    /// How long a connection may take to come before the runner says it has none: postgres-nio waits for one without
    /// end (a wrong host, port or password in `LISTEN_DATABASE_URL` only shows in its info lines).
    static let patience = Duration.seconds(10)

    private func listen() async {
        var backoff = Backoff(base: .milliseconds(200))
        while !Task.isCancelled {
            let listening = ListeningFlag()
            let watchdog = Task { [logger] in
                try await Task.sleep(for: Self.patience)
                guard !listening.value.withLock({ $0 }) else { return }
                logger.warning("no connection to LISTEN on yet; jobs are found by polling and cancels by the sweep until there is one")
            }
            defer { watchdog.cancel() }
            do {
                try await self.client.withConnection { connection in
                    try await connection.listen(on: Channel.jobs) { jobs in
                        try await connection.listen(on: Channel.cancel) { cancels in
                            listening.value.withLock { $0 = true }
                            backoff.reset()
                            // Whatever was sent while we were not listening is lost: look for it now.
                            self.executor.wake.signal()
                            self.sweeper.sweepSoon()
                            try await self.consume(jobs: jobs, cancels: cancels)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                let delay = backoff.next()
                self.logger.warning(
                    "listen connection lost; reconnecting", metadata: ["error": "\(describe(error))", "retry.in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    private func consume(jobs: PostgresNotificationSequence, cancels: PostgresNotificationSequence) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await note in jobs.cancelOnGracefulShutdown() where self.queues.contains(note.payload) {
                    self.executor.wake.signal()
                }
            }
            group.addTask {
                for try await note in cancels.cancelOnGracefulShutdown() {
                    if let id = Int64(note.payload) { self.executor.cancel(jobID: id) }
                }
            }
            // Either ending (shutdown, or the connection dropped) ends both, and the caller reconnects.
            try await group.next()
            group.cancelAll()
        }
    }
}

/// Whether a listen connection has started listening (the watchdog's question).
private final class ListeningFlag: Sendable {
    let value = Mutex(false)
}
