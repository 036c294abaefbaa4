import Synchronization

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

/// Runs `body` in a task of its own and waits for it at most `limit`; then cancels it, leaves it behind, and throws
/// ``TimeLimitExceeded``. Unlike ``withTimeLimit(_:_:)`` it does not wait for a body that ignores cancellation: a
/// statement sent on a pooled connection at the moment PostgreSQL closes that connection (a backend terminated,
/// a restart) can wait forever for an answer in postgres-nio, and a runner's claim or finish must not wait with it.
/// For statements that are safe to try again (fenced writes, claims whose lost answer the sweep recovers).
package func abandoningAfter<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = AbandonRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            race.start(continuation, limit: limit, body)
        }
    } onCancel: {
        race.cancelWork()
    }
}

/// The two tasks of ``abandoningAfter(_:_:)``, the work and its timer: the first to end resumes the caller.
private final class AbandonRace<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, work: Task<Void, Never>?, timer: Task<Void, Never>?)>((nil, nil, nil))

    func start(_ continuation: CheckedContinuation<T, any Error>, limit: Duration, _ body: @escaping @Sendable () async throws -> T) {
        self.state.withLock { state in
            state.continuation = continuation
            state.work = Task {
                let result = await Result(catching: { try await body() })
                self.finish(result)?.timer?.cancel()
            }
            state.timer = Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled else { return }
                self.finish(.failure(TimeLimitExceeded(limit: limit)))?.work?.cancel()
            }
        }
    }

    /// Resumes the caller if nobody has; returns the tasks then, for the winner to cancel the other.
    private func finish(_ result: Result<T, any Error>) -> (work: Task<Void, Never>?, timer: Task<Void, Never>?)? {
        let taken = self.state.withLock { state -> (CheckedContinuation<T, any Error>, Task<Void, Never>?, Task<Void, Never>?)? in
            guard let continuation = state.continuation else { return nil }
            state.continuation = nil
            return (continuation, state.work, state.timer)
        }
        guard let (continuation, work, timer) = taken else { return nil }
        continuation.resume(with: result)
        return (work, timer)
    }

    func cancelWork() { self.state.withLock { $0.work }?.cancel() }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
