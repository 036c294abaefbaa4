/// `body` ran past its time limit and was cancelled.
package struct TimeLimitExceeded: Error, CustomStringConvertible {
    package let limit: Duration
    package var description: String { "no answer within \(self.limit)" }
}

/// Runs `body`, cancelling it at `limit` and then throwing ``TimeLimitExceeded``. For work that answers
/// cancellation (waiting for a pooled connection does): a runner's last writes at shutdown, which must not wait
/// forever for a database that is gone.
package func withTimeLimit<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimeLimitExceeded(limit: limit) }
        return value
    }
}
