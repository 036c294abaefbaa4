import Logging
import ServiceLifecycle
import Synchronization

/// Writes finished attempts in batches: whatever finished while the previous write was in flight goes in the
/// next one, so under load one UPDATE finishes many jobs. A failed write is retried, never dropped.
final class Completer: Service, Sendable {
    let store: JobStore
    let runnerID: String
    let logger: Logger
    private let buffer = Mutex<[Finished]>([])
    /// The batch being written now (sharing the batch's storage: no copy on the hot path).
    private let writing = Mutex<[Finished]>([])
    private let wake = WakeSignal()
    private let stopping = Atomic<Bool>(false)

    init(store: JobStore, runnerID: String, logger: Logger) {
        self.store = store
        self.runnerID = runnerID
        self.logger = logger
    }

    /// Jobs whose finish is queued or being written.
    var pendingIDs: Set<Int64> {
        // The buffer first: a batch leaves it for `writing` (and goes back on failure) under both locks' order.
        let queued = self.buffer.withLock { Set($0.map(\.id)) }
        return queued.union(self.writing.withLock { $0.map(\.id) })
    }

    /// Queues a finished attempt for the next write.
    func submit(_ finished: Finished) {
        self.buffer.withLock { $0.append(finished) }
        self.wake.signal()
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await self.loop()
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .releasing)
            self.wake.signal()
        }
    }

    private func loop() async {
        var backoff = Backoff(base: .milliseconds(100))
        while !Task.isCancelled {
            // Jobs of one claimed batch finish within a moment of each other: a short linger writes them together.
            if self.buffer.withLock({ !$0.isEmpty && $0.count < 64 }) { try? await Task.sleep(for: .milliseconds(2)) }
            let batch = self.buffer.withLock { buffer in
                defer { buffer.removeAll(keepingCapacity: true) }
                if !buffer.isEmpty { self.writing.withLock { $0 = buffer } }
                return buffer
            }
            defer { self.writing.withLock { $0 = [] } }
            if batch.isEmpty {
                // Runs after the executor stopped (services stop in reverse order), so empty means done.
                if self.stopping.load(ordering: .acquiring) { return }
                await self.wake.wait(timeout: .seconds(1))
                continue
            }
            do {
                let applied = try await self.store.finish(batch, runnerID: self.runnerID)
                backoff.reset()
                if applied.count < batch.count {
                    for item in batch where !applied.contains(item.id) {
                        self.logger.warning(
                            "late write dropped: the job is no longer held by this runner",
                            metadata: ["job.id": "\(item.id)", "job.attempt": "\(item.attempt)"])
                    }
                }
            } catch {
                self.buffer.withLock { buffer in
                    buffer.insert(contentsOf: batch, at: 0)
                    self.writing.withLock { $0 = [] }
                }
                let delay = backoff.next()
                self.logger.warning(
                    "writing finished jobs failed; retrying",
                    metadata: ["error": "\(describe(error))", "jobs": "\(batch.count)", "retry.in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }
}
