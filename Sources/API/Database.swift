import Logging
import PostgresNIO
import Skipper

/// Runs the API's database work with a deadline: when PostgreSQL is down or unreachable the client gets
/// 503 `DATABASE_UNAVAILABLE` within two seconds instead of a hanging request, and the pool reconnects by itself
/// once the server is back.
struct Database: Sendable {
    let postgres: PostgresClient
    let client: SkipperClient
    var store: JobStore { self.client.store }

    func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    try await Task.sleep(for: APILimits.databaseDeadline)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let value = first else { throw APIError.databaseUnavailable }
                return value
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
            throw APIError.databaseUnavailable
        } catch {
            throw APIError.databaseUnavailable
        }
    }

    /// SQLSTATE classes that mean the server is going away or full: connection exceptions, operator intervention
    /// (shutdown), insufficient resources.
    private static let unavailableStates = ["08", "57", "53"]
}
