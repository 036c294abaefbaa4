import Synchronization

/// Wakes one waiting task: a signal before the wait is remembered, and a wait ends at a timeout too.
package final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var waiterToken: UInt64 = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// Wakes the waiter, or the next one to wait.
    package func signal() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the first of: a signal (also one that came before), `timeout`, or task cancellation.
    package func wait(timeout: Duration) async {
        if self.state.withLock({ state in
            defer { state.pending = false }
            return state.pending
        }) { return }
        let token = self.state.withLock { state -> UInt64 in
            state.waiterToken &+= 1
            return state.waiterToken
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.resume(token: token)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.pending || state.waiterToken != token {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.resume(token: token)
        }
        timer.cancel()
    }

    /// Ends the wait identified by `token` if it is still the current one.
    private func resume(token: UInt64) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.waiterToken == token else { return nil }
            // Invalidate the token so a continuation registered after this point resumes at once.
            state.waiterToken &+= 1
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
