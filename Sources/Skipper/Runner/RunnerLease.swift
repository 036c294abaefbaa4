import Synchronization

/// The runner's lease as the runner itself can prove it: the jobs it holds are its own while its heartbeat is fresh,
/// and the leader rescues them once `skipper.runners.heartbeat_at` is older than the runner's `lease_ms`
/// (`RESCUE_AFTER`) by the server's clock. The runner counts from when it *sent* its last heartbeat that landed
/// (which is no later than when it landed), and treats the lease as lost after two thirds of its length: so it stops
/// its own jobs, and claims nothing, before anyone may rescue them, whatever stalled the heartbeat (a lock on its row,
/// PostgreSQL restarting, a starved pool).
final class RunnerLease: Sendable {
    /// `RESCUE_AFTER`: how long the server waits before rescuing.
    let length: Duration
    /// How long after the last landed heartbeat this runner still counts its lease as held.
    let safe: Duration
    private let lastSent = Mutex<ContinuousClock.Instant?>(nil)

    init(length: Duration) {
        self.length = length
        self.safe = length * 2 / 3
    }

    /// A heartbeat sent at `sentAt` landed (or the registration did).
    func renewed(sentAt: ContinuousClock.Instant) {
        self.lastSent.withLock { last in
            if last.map({ sentAt > $0 }) ?? true { last = sentAt }
        }
    }

    /// When the lease stops counting as held, by this process's clock; nil before the first heartbeat.
    var expiresAt: ContinuousClock.Instant? { self.lastSent.withLock { $0 }.map { $0 + self.safe } }

    /// Whether the runner may hold and claim jobs now.
    var isHeld: Bool { self.expiresAt.map { ContinuousClock.now < $0 } ?? false }
}
