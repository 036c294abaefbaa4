import Synchronization

/// Opens once; every waiter before and after passes.
final class StartGate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = self.state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until `open`; returns early (without opening) when the task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let passNow = self.state.withLock { state -> Bool in
                    if state.open || Task.isCancelled { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if passNow { continuation.resume() }
            }
        } onCancel: {
            let waiters = self.state.withLock { state in
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    var isOpen: Bool { self.state.withLock { $0.open } }
}
