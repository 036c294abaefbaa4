import Logging
import PostgresNIO

// postgres-nio hands back a statement's row stream as soon as the statement is bound. An error PostgreSQL raises
// after that (a lock timeout, a function that fails, a serialization failure) reaches only a reader of the stream:
// a caller that drops it never hears of it, and a COMMIT after it rolls the transaction back without a word. A
// statement whose rows nobody needs (`SELECT pg_notify(…)`, `SELECT some_function()`) runs through `perform`, which
// reads the result to its end so that such an error is thrown where the statement is.

extension PostgresClient {
    /// Runs `query` and reads its result to the end: an error raised while it runs is thrown here.
    package func perform(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}

extension PostgresConnection {
    /// Runs `query` and reads its result to the end: an error raised while it runs is thrown here.
    package func perform(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}
