import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// The first SIGTERM/SIGINT starts a graceful shutdown (the ServiceGroup's); a second one stops the process at
/// once. Jobs it held are rescued by another runner after RESCUE_AFTER. Listed right after the Postgres client, so
/// it is the last service told to stop and keeps listening while the runner drains.
struct SignalGuard: Service {
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        var count = 0
        for await signal in signals.cancelOnGracefulShutdown() {
            count += 1
            if count >= 2 {
                self.logger.critical("second signal; stopping now", metadata: ["signal": "\(signal)"])
                exit(130)
            }
        }
    }
}
