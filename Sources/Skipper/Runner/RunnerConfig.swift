import Foundation

/// How a runner behaves. Built in code (`RunnerConfig()` is every default; set the fields you need), or from the
/// process environment with ``fromEnvironment(_:)`` as skipper-runner does. Values that depend on others (the
/// heartbeat, the cancel sweep in poll-only mode, the maintenance interval) are worked out when read, so a field set
/// after construction always applies.
///
/// The runner's Postgres client needs `workers + 6` connections at least (one per running job that queries, plus
/// the claim, the finish writer, the progress writer, the listener, the cancel sweep and maintenance); pass a
/// `control` client of two connections for the heartbeat (see ``JobRunner``).
public struct RunnerConfig: Sendable {
    /// `WORKERS`: jobs run at once by this process. Default 8; 1 to 10,000. Every bound below is checked when the
    /// environment is read: a value outside it is a ``ConfigError`` naming the variable, never a trap or a spin.
    public var workers = 8
    /// `QUEUES`: comma-separated queues this runner serves. Default `default`.
    public var queues = ["default"]
    /// `CLAIM_BATCH`: most jobs one claim statement takes. Default 100 (never more than the free slots).
    public var claimBatch = 100
    /// `POLL_INTERVAL`: how often an idle runner looks for jobs when no notification came. Default 1 s.
    public var pollInterval: Duration = .seconds(1)
    /// `POLL_ONLY=1`: no LISTEN (wake-ups by polling, cancels by sweep), no prepared statements, no cancel by pid.
    public var pollOnly = false
    /// `DB_POOLER=pgbouncer`: the runner reaches PostgreSQL through a transaction-pooling PgBouncer: no prepared
    /// statements, no cancel of a statement by backend pid, and LISTEN only over a direct connection of its own
    /// (`LISTEN_DATABASE_URL`, the `listen` client of ``JobRunner``), else polling as with `POLL_ONLY`.
    public var pooled = false
    /// `RESCUE_AFTER`: a RUNNING job whose runner has not heartbeated for this long is rescued. Default 30 s.
    public var rescueAfter: Duration = .seconds(30)
    /// `SHUTDOWN_GRACE`: on SIGTERM, how long running jobs may finish before they are cancelled and released.
    /// Default 30 s.
    public var shutdownGrace: Duration = .seconds(30)
    /// `RETENTION`: finished jobs older than this are pruned. Default 7 days.
    public var retention: Duration = .seconds(7 * 86_400)
    /// `CANCEL_SWEEP`: how often the runner checks its own jobs for cancel requests it may have missed. nil (the
    /// default): 2 s, or the poll interval in poll-only mode, where the sweep is how cancels arrive.
    public var cancelSweepSetting: Duration?
    /// `MAINTENANCE_INTERVAL`: how often the leader rescues and prunes. nil (the default): 5 s, or the heartbeat
    /// interval when that is shorter (a short `RESCUE_AFTER` is rescued within it).
    public var maintenanceIntervalSetting: Duration?
    /// `PROGRESS_INTERVAL`: the most often one job's progress is written. Default 500 ms.
    public var progressInterval: Duration = .milliseconds(500)
    /// `BATCH_SIZE`: transactions per slice of the shop's settlement job, unless its arguments say otherwise.
    /// Default 10,000; 100 to 1,000,000.
    public var batchSize = 10_000

    /// The heartbeat period: a third of `RESCUE_AFTER`, at most 5 s, so two missed beats never rescue a live runner.
    public var heartbeatInterval: Duration { min(self.rescueAfter / 3, .seconds(5)) }

    /// How often the runner sweeps its own jobs for cancel requests (see `cancelSweepSetting`).
    public var cancelSweep: Duration { self.cancelSweepSetting ?? (self.pollOnly || self.pooled ? self.pollInterval : .seconds(2)) }

    /// How often the leader rescues and prunes (see `maintenanceIntervalSetting`).
    public var maintenanceInterval: Duration { self.maintenanceIntervalSetting ?? min(.seconds(5), self.heartbeatInterval) }

    /// Every default; reads nothing from the environment.
    public init() {}

    /// Checks every field against its bounds (the same as the environment's), naming the variable and the field:
    /// a config built in code with `rescueAfter = .zero` made the heartbeat and maintenance loops spin, and a poll
    /// interval of zero an idle runner. ``JobRunner`` calls it.
    public func validate() throws(ConfigError) {
        func check(_ value: Int, _ range: ClosedRange<Int>, _ name: String) throws(ConfigError) {
            guard range.contains(value) else {
                throw ConfigError(name: name, message: "must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
            }
        }
        func check(_ value: Duration?, _ range: ClosedRange<Duration>, _ name: String) throws(ConfigError) {
            guard let value else { return }
            guard range.contains(value) else {
                throw ConfigError(name: name, message: "must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
            }
        }
        try check(self.workers, 1...10_000, "WORKERS (workers)")
        try check(self.claimBatch, 1...10_000, "CLAIM_BATCH (claimBatch)")
        try check(self.batchSize, 100...1_000_000, "BATCH_SIZE (batchSize)")
        guard !self.queues.isEmpty, self.queues.allSatisfy({ !$0.isEmpty }) else {
            throw ConfigError(name: "QUEUES (queues)", message: "must name at least one queue, none empty")
        }
        try check(self.pollInterval, .milliseconds(10) ... .seconds(3600), "POLL_INTERVAL (pollInterval)")
        try check(self.rescueAfter, .seconds(1) ... .seconds(86_400), "RESCUE_AFTER (rescueAfter)")
        try check(self.shutdownGrace, .zero ... .seconds(86_400), "SHUTDOWN_GRACE (shutdownGrace)")
        try check(self.retention, .seconds(60) ... .seconds(3650 * 86_400), "RETENTION (retention)")
        try check(self.cancelSweepSetting, .milliseconds(50) ... .seconds(3600), "CANCEL_SWEEP (cancelSweepSetting)")
        try check(self.maintenanceIntervalSetting, .milliseconds(100) ... .seconds(3600), "MAINTENANCE_INTERVAL (maintenanceIntervalSetting)")
        try check(self.progressInterval, .milliseconds(10) ... .seconds(3600), "PROGRESS_INTERVAL (progressInterval)")
    }

    /// Defaults, changed by the process environment (or `environment`): skipper-runner's configuration, one
    /// variable per field. A value out of its bounds is a ``ConfigError`` naming the variable.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> RunnerConfig {
        var config = RunnerConfig()
        try config.read(environment)
        return config
    }

    private mutating func read(_ env: [String: String]) throws(ConfigError) {
        if let v = env["WORKERS"] { self.workers = try ConfigError.integer(v, name: "WORKERS", in: 1...10_000) }
        if let v = env["QUEUES"] {
            let queues = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !queues.isEmpty else { throw ConfigError(name: "QUEUES", message: "must name at least one queue") }
            self.queues = queues
        }
        if let v = env["CLAIM_BATCH"] { self.claimBatch = try ConfigError.integer(v, name: "CLAIM_BATCH", in: 1...10_000) }
        if let v = env["POLL_INTERVAL"] { self.pollInterval = try ConfigError.duration(v, name: "POLL_INTERVAL", in: .milliseconds(10) ... .seconds(3600)) }
        if let v = env["POLL_ONLY"] { self.pollOnly = ["1", "true", "yes", "on"].contains(v.lowercased()) }
        self.pooled = try DatabaseConfig.pooled(env["DB_POOLER"])
        if let v = env["RESCUE_AFTER"] { self.rescueAfter = try ConfigError.duration(v, name: "RESCUE_AFTER", in: .seconds(1) ... .seconds(86_400)) }
        if let v = env["SHUTDOWN_GRACE"] { self.shutdownGrace = try ConfigError.duration(v, name: "SHUTDOWN_GRACE", in: .zero ... .seconds(86_400)) }
        if let v = env["RETENTION"] { self.retention = try ConfigError.duration(v, name: "RETENTION", in: .seconds(60) ... .seconds(3650 * 86_400)) }
        if let v = env["CANCEL_SWEEP"] {
            self.cancelSweepSetting = try ConfigError.duration(v, name: "CANCEL_SWEEP", in: .milliseconds(50) ... .seconds(3600))
        }
        if let v = env["MAINTENANCE_INTERVAL"] {
            self.maintenanceIntervalSetting = try ConfigError.duration(
                v, name: "MAINTENANCE_INTERVAL", in: .milliseconds(100) ... .seconds(3600))
        }
        if let v = env["PROGRESS_INTERVAL"] { self.progressInterval = try ConfigError.duration(v, name: "PROGRESS_INTERVAL", in: .milliseconds(10) ... .seconds(3600)) }
        if let v = env["BATCH_SIZE"] {
            self.batchSize = try ConfigError.integer(v, name: "BATCH_SIZE", in: 100...1_000_000)
        }
    }
}
