import Logging
import ServiceLifecycle

/// Writes the progress handlers report, for all jobs at once, at most every progress interval.
struct ProgressFlusher: Service {
    let store: JobStore
    let board: ProgressBoard
    let runnerID: String
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                let changed = self.board.takeDirty()
                guard !changed.isEmpty else { continue }
                do {
                    try await self.store.writeProgress(changed, runnerID: self.runnerID)
                } catch {
                    // Cancelled at shutdown is not a failure.
                    if !Task.isCancelled { self.logger.warning("progress write failed", metadata: ["error": "\(describe(error))"]) }
                }
            }
        }
    }
}
