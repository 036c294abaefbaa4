import Foundation
import Logging
import UnixSignals

/// For skipper-runner and skipper-api (the library never touches signals): the first SIGTERM/SIGINT starts the
/// ServiceGroup's graceful shutdown; from then on the process exits within `limit` whatever happens (a statement
/// stuck behind a lock, a client trickling a request body), and a second signal ends it at once. Jobs a runner could
/// not hand back are rescued by another after RESCUE_AFTER. Runs for the whole life of the process, not as a service,
/// so it still listens after the services it would have been stopped with.
package enum ShutdownGuard {
    package static func install(logger: Logger, limit: Duration) {
        Task.detached {
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
            var count = 0
            for await signal in signals {
                count += 1
                if count == 1 {
                    // A thread of its own: it must fire even if every task is stuck.
                    let seconds = Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18
                    Thread.detachNewThread {
                        Thread.sleep(forTimeInterval: seconds)
                        logger.critical("did not stop within its shutdown limit; exiting", metadata: ["limit": "\(limit)"])
                        exit(1)
                    }
                } else {
                    logger.critical("second signal; stopping now", metadata: ["signal": "\(signal)"])
                    exit(130)
                }
            }
        }
    }
}
