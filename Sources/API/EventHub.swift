import Logging
import PostgresNIO
import ServiceLifecycle
import Skipper
import Synchronization

/// Fans `skipper_events` notifications out to the SSE streams following each job. One LISTEN connection serves
/// every stream; it reconnects by itself, and streams also poll, so a missed notification only delays an event.
final class EventHub: Service, Sendable {
    private struct State {
        var followers: [Int64: [UInt64: WakeSignal]] = [:]
        var streams = 0
        var nextToken: UInt64 = 0
    }

    /// Where it LISTENs: the API's pool, a direct connection behind a pooler (`LISTEN_DATABASE_URL`), or nowhere
    /// (behind a pooler without one: the streams' own polling, every second, is how they see changes).
    let postgres: PostgresClient?
    let logger: Logger
    /// The most streams this process serves at once (`SSE_MAX_STREAMS`).
    let maxStreams: Int
    private let state = Mutex(State())

    init(postgres: PostgresClient?, maxStreams: Int, logger: Logger) {
        self.postgres = postgres
        self.maxStreams = maxStreams
        self.logger = logger
    }

    /// Streams served now.
    var streams: Int { self.state.withLock { $0.streams } }

    /// Registers a follower of `jobID`, whose signal rings on each notification for the job; nil when this process
    /// already serves `maxStreams` streams.
    func follow(_ jobID: Int64) -> (token: UInt64, signal: WakeSignal)? {
        let signal = WakeSignal()
        let token = self.state.withLock { state -> UInt64? in
            guard state.streams < self.maxStreams else { return nil }
            state.streams += 1
            state.nextToken &+= 1
            state.followers[jobID, default: [:]][state.nextToken] = signal
            return state.nextToken
        }
        return token.map { ($0, signal) }
    }

    func unfollow(_ jobID: Int64, token: UInt64) {
        self.state.withLock { state in
            guard state.followers[jobID]?.removeValue(forKey: token) != nil else { return }
            state.streams -= 1
            if state.followers[jobID]?.isEmpty == true { state.followers[jobID] = nil }
        }
    }

    /// Rings the followers of `jobID` (also used after this API changed the job itself).
    func poke(_ jobID: Int64) {
        let signals = self.state.withLock { Array(($0.followers[jobID] ?? [:]).values) }
        for signal in signals { signal.signal() }
    }

    func run() async throws {
        guard let postgres = self.postgres else {
            try? await gracefulShutdown()
            return
        }
        // Cancelled on shutdown: a listener waiting for a connection to an unreachable server must not hold it up.
        try await cancelWhenGracefulShutdown { await self.listen(on: postgres) }
    }

    private func listen(on postgres: PostgresClient) async {
        var backoff = Backoff(base: .milliseconds(200))
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await postgres.withConnection { connection in
                    try await connection.listen(on: Channel.events) { notifications in
                        backoff.reset()
                        for try await notification in notifications.cancelOnGracefulShutdown() {
                            if let id = Int64(notification.payload) { self.poke(id) }
                        }
                    }
                }
                return
            } catch is CancellationError {
                return
            } catch {
                if Task.isShuttingDownGracefully { return }
                let delay = backoff.next()
                self.logger.warning(
                    "events listener lost its connection; reconnecting", metadata: ["error": "\(String(reflecting: error))", "retry.in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }
}
