import Synchronization

/// `body` ran past its time limit and was cancelled.
package struct TimeLimitExceeded: Error, CustomStringConvertible {
    package let limit: Duration
    package var description: String { "no answer within \(self.limit)" }
}

/// Runs `body` in a task of its own and waits for it at most `limit`, or until the caller is cancelled; then
/// cancels it, leaves it behind, and throws ``TimeLimitExceeded`` (or `CancellationError`). It does not wait for a
/// body that ignores cancellation: a statement sent on a pooled connection at the moment PostgreSQL closes that
/// connection (a backend terminated, a restart) can wait forever for an answer in postgres-nio, and a runner's claim,
/// finish or last unregister must not wait with it. For statements that are safe to try again or to give up on
/// (fenced writes, claims whose lost answer the sweep recovers, a row that ages out).
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
