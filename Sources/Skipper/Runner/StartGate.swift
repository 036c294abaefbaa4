import ServiceLifecycle
import Synchronization

/// Opens once; every waiter before and after passes.
final class StartGate: Sendable {
    private struct State {
        var open = false
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    func open() {
        let waiters = self.state.withLock { state in
            state.open = true
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until `open`; returns early (without opening) when this task is cancelled. Only this waiter: the
    /// others (other services waiting for the same start) keep waiting.
    func wait() async {
        let id = self.state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let passNow = self.state.withLock { state -> Bool in
                    if state.open || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if passNow { continuation.resume() }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Waits until the runner has started; returns early when the task is cancelled or graceful shutdown begins, so a
    /// runner that never started (its database unreachable) stops on the first signal. Callers check `isOpen`.
    func waitForStart() async {
        await cancelWhenGracefulShutdown { await self.wait() }
    }

    var isOpen: Bool { self.state.withLock { $0.open } }
}
