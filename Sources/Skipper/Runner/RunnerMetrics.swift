import CoreMetrics
import Foundation

/// What a runner reports through swift-metrics: to the backend the application bootstraps (skipper-runner's
/// Prometheus endpoint on `METRICS_PORT`), and to nothing when none is. The instruments of every kind are made once,
/// when the runner starts, so the hot path only adds to them.
final class RunnerMetrics: Sendable {
    /// One kind's instruments.
    struct Kind: Sendable {
        /// Finished attempts by outcome: completed, failed, retried, cancelled, snoozed, released.
        let outcomes: [String: Counter]
        /// How long an attempt ran (started to finished), in this process.
        let duration: CoreMetrics.Timer
        /// From due (`run_at`) to started.
        let lag: CoreMetrics.Timer
    }

    static let outcomes = ["completed", "failed", "retried", "cancelled", "snoozed", "released"]

    let kinds: [String: Kind]
    /// Claim statements that returned, and the jobs each took.
    let claims: Counter
    let claimedJobs: Counter
    let claimSize: Recorder
    /// The completer's writes: jobs per batch, and how long a write took.
    let completerBatch: Recorder
    let completerWrite: CoreMetrics.Timer
    /// Sampled every second: jobs running here now, and the age of the lease (since the last heartbeat that landed
    /// was sent).
    let running: Gauge
    let leaseAge: Gauge

    init(kinds: [String]) {
        self.kinds = Dictionary(
            uniqueKeysWithValues: kinds.map { kind in
                (
                    kind,
                    Kind(
                        outcomes: Dictionary(
                            uniqueKeysWithValues: Self.outcomes.map {
                                ($0, Counter(label: "skipper_jobs_finished_total", dimensions: [("kind", kind), ("outcome", $0)]))
                            }),
                        duration: CoreMetrics.Timer(label: "skipper_job_duration_seconds", dimensions: [("kind", kind)]),
                        lag: CoreMetrics.Timer(label: "skipper_job_lag_seconds", dimensions: [("kind", kind)]))
                )
            })
        self.claims = Counter(label: "skipper_claims_total")
        self.claimedJobs = Counter(label: "skipper_claimed_jobs_total")
        self.claimSize = Recorder(label: "skipper_claim_size")
        self.completerBatch = Recorder(label: "skipper_completer_batch_size")
        self.completerWrite = CoreMetrics.Timer(label: "skipper_completer_write_seconds")
        self.running = Gauge(label: "skipper_running_jobs")
        self.leaseAge = Gauge(label: "skipper_lease_age_seconds")
    }

    /// A claim returned `jobs`; each started now.
    func claimed(_ jobs: [ClaimedJob]) {
        self.claims.increment()
        self.claimSize.record(jobs.count)
        guard !jobs.isEmpty else { return }
        self.claimedJobs.increment(by: jobs.count)
        let now = Date().timeIntervalSince1970
        for job in jobs {
            // run_at in PostgreSQL's microseconds since 2000-01-01; the infinities say nothing of a wait.
            let microseconds = job.position.runAtMicroseconds
            guard microseconds != .min, microseconds != .max else { continue }
            let due = 946_684_800 + Double(microseconds) / 1_000_000
            self.kinds[job.kind]?.lag.recordNanoseconds(Int64(max(0, now - due) * 1_000_000_000))
        }
    }

    /// An attempt of `kind` finished with `outcome` after running `duration`.
    func finished(kind: String, outcome: String, after duration: Duration) {
        guard let instruments = self.kinds[kind] else { return }
        instruments.outcomes[outcome]?.increment()
        instruments.duration.record(duration)
    }
}

extension CoreMetrics.Timer {
    /// Records `duration` (swift-metrics takes nanoseconds).
    func record(_ duration: Duration) {
        self.recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
