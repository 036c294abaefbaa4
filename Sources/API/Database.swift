import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Skipper
import Synchronization
import _ConnectionPoolModule

/// Runs the API's database work with a deadline: when PostgreSQL is down or unreachable the client gets
/// 503 `DATABASE_UNAVAILABLE` within `DB_TIMEOUT` (2 s) instead of a hanging request, and the pool reconnects by itself
/// once the server is back.
struct Database: Sendable {
    let postgres: PostgresClient
    let client: SkipperClient
    /// `DB_TIMEOUT`: after this, 503.
    let deadline: TimeAmount
    var store: JobStore { self.client.store }

    /// Runs `body` with this database (its pool, store and client) under the deadline.
    ///
    /// At the deadline the request answers 503 at once, without waiting for the statement: cancelling a Swift task
    /// does not stop a statement PostgreSQL is running (a lock wait, say), so the caller is resumed by the timer and
    /// the work finishes in the background, ended on the server by `statement_timeout` (the API's connections are
    /// opened with it set to `DB_TIMEOUT`), after which its connection goes back to the pool healthy.
    func run<T: Sendable>(_ body: @escaping @Sendable (Database) async throws -> T) async throws -> T {
        do {
            let race = DeadlineRace<T>()
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    race.start(continuation)
                    // One task and one cheap NIO timer per call (a task group racing a sleeping task costs three tasks
                    // and a dispatch timer).
                    let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: self.deadline) {
                        race.finish(.failure(CancellationError()))
                    }
                    race.track(Task {
                        defer { timer.cancel() }
                        do { race.finish(.success(try await body(self))) } catch { race.finish(.failure(error)) }
                    })
                }
            } onCancel: {
                race.finish(.failure(CancellationError()))
            }
        } catch let error as APIError {
            throw error
        } catch let error as PSQLError {
            // A statement PostgreSQL rejected is our bug (500, logged); anything about reaching it is a 503.
            if let state = error.serverInfo?[.sqlState], !Self.unavailableStates.contains(where: state.hasPrefix) {
                throw error
            }
            throw APIError.databaseUnavailable
        } catch is CancellationError {
            // The deadline passed.
            throw APIError.databaseUnavailable
        } catch is ConnectionPoolError {
            // No connection within the deadline, the pool's circuit breaker, or the pool shutting down.
            throw APIError.databaseUnavailable
        } catch is IOError {
            throw APIError.databaseUnavailable
        } catch is ChannelError {
            throw APIError.databaseUnavailable
        }
        // Anything else (a row that does not decode, say) is our bug: the 500 path logs it, and it must not pass
        // for an outage.
    }

    /// SQLSTATE classes that mean the server is going away or full: connection exceptions, operator intervention
    /// (shutdown), insufficient resources.
    private static let unavailableStates = ["08", "57", "53"]
}

/// The caller's continuation, resumed once by whichever comes first: the work's result, the deadline, or the
/// caller's own cancellation (which also cancel the work).
private final class DeadlineRace<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, work: Task<Void, Never>?, done: Bool)>((nil, nil, false))

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let finished = self.state.withLock { state in
            if !state.done { state.continuation = continuation }
            return state.done
        }
        // Cancelled before it began.
        if finished { continuation.resume(throwing: CancellationError()) }
    }

    func track(_ work: Task<Void, Never>) {
        let cancelNow = self.state.withLock { state in
            state.work = work
            return state.done
        }
        if cancelNow { work.cancel() }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, work) = self.state.withLock { state in
            defer { state.continuation = nil; state.done = true }
            return (state.continuation, state.done ? nil : state.work)
        }
        if case .failure = result { work?.cancel() }
        continuation?.resume(with: result)
    }
}
