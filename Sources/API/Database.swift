import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Skipper
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
    func run<T: Sendable>(_ body: @escaping @Sendable (Database) async throws -> T) async throws -> T {
        do {
            // The work runs in a task that a timer on an event loop cancels at the deadline: one task and one cheap
            // NIO timer per call, where a task group racing a sleeping task costs three tasks and a dispatch timer.
            let work = Task { try await body(self) }
            let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: self.deadline) { work.cancel() }
            defer { timer.cancel() }
            return try await withTaskCancellationHandler {
                try await work.value
            } onCancel: {
                work.cancel()
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
