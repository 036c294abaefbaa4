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

/// Runs `body` in a task of its own and waits for it at most `limit`, or until the caller is cancelled; then
/// cancels it, leaves it behind, and throws ``TimeLimitExceeded`` (or `CancellationError`). Unlike
/// ``withTimeLimit(_:_:)`` it does not wait for a body that ignores cancellation: a statement sent on a pooled
/// connection at the moment PostgreSQL closes that connection (a backend terminated, a restart) can wait forever for
/// an answer in postgres-nio, and a runner's claim or finish must not wait with it. For statements that are safe to
/// try again (fenced writes, claims whose lost answer the sweep recovers).
package func abandoningAfter<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = AbandonRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            race.start(continuation, limit: limit, body)
        }
    } onCancel: {
        race.cancel()
    }
}

/// The two tasks of ``abandoningAfter(_:_:)``, the work and its timer, and the caller's cancellation: the first to
/// come resumes the caller, once.
private final class AbandonRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
        var cancelled = false
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, limit: Duration, _ body: @escaping @Sendable () async throws -> T) {
        let cancelledBefore = self.state.withLock { state -> Bool in
            // Cancelled before it began (the handler ran first): nothing is started.
            guard !state.cancelled else { return true }
            state.continuation = continuation
            state.work = Task {
                let result = await Result(catching: { try await body() })
                self.finish(result)
            }
            state.timer = Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled else { return }
                self.finish(.failure(TimeLimitExceeded(limit: limit)))
            }
            return false
        }
        if cancelledBefore { continuation.resume(throwing: CancellationError()) }
    }

    func cancel() {
        self.state.withLock { $0.cancelled = true }
        self.finish(.failure(CancellationError()))
    }

    /// Resumes the caller if nobody has, and cancels both tasks (the one that called this has ended anyway).
    private func finish(_ result: Result<T, any Error>) {
        let taken = self.state.withLock { state -> (CheckedContinuation<T, any Error>, Task<Void, Never>?, Task<Void, Never>?)? in
            guard let continuation = state.continuation else { return nil }
            state.continuation = nil
            return (continuation, state.work, state.timer)
        }
        guard let (continuation, work, timer) = taken else { return }
        continuation.resume(with: result)
        work?.cancel()
        timer?.cancel()
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
