import Logging
import ServiceLifecycle

/// Makes the ticks of `skipper.schedules` that have come: every runner runs one, and each tick is made once (the
/// schedule's row lock and `skipper.schedule_ticks` see to it), by whichever runner gets there first. Writes the
/// periodic jobs its program declares when it starts.
struct Scheduler: Service {
    let store: JobStore
    let declared: [PeriodicJob]
    let gate: StartGate
    let logger: Logger

    /// The longest wait between two looks: a schedule made or changed elsewhere is seen within it.
    static let longestWait = Duration.seconds(1)

    func run() async throws {
        await self.gate.waitForStart()
        guard self.gate.isOpen else { return }
        await cancelWhenGracefulShutdown { await self.loop() }
    }

    private func loop() async {
        var undeclared = self.declared
        var backoff = Backoff(base: .milliseconds(200))
        var lastPrune = ContinuousClock.now - .seconds(3600)
        // Logged once each, until they tick again.
        var unparsable: Set<String> = []
        var failing: Set<String> = []
        while !Task.isCancelled {
            do {
                while let job = undeclared.first {
                    let (_, created) = try await self.store.saveSchedule(job, source: "code")
                    self.logger.info(
                        created ? "periodic job declared" : "periodic job updated",
                        metadata: ["schedule": "\(job.name)", "cron": "\(job.schedule)"])
                    undeclared.removeFirst()
                }
                let (due, nextIn) = try await self.store.dueSchedules()
                for name in due where !Task.isCancelled {
                    // One schedule's failure (a row PostgreSQL refuses) holds up neither the others nor the next look.
                    let outcome: TickOutcome
                    do {
                        outcome = try await self.store.tick(schedule: name)
                    } catch {
                        if Task.isCancelled { return }
                        if failing.insert(name).inserted {
                            self.logger.error("could not make a schedule's tick; trying again", metadata: ["schedule": "\(name)", "error": "\(describe(error))"])
                        }
                        continue
                    }
                    failing.remove(name)
                    switch outcome {
                    case .enqueued(let id, let tick, let queue):
                        unparsable.remove(name)
                        self.logger.info("periodic job enqueued", metadata: ["schedule": "\(name)", "job.id": "\(id)", "tick": "\(tick)"])
                        try? await self.store.notifyInserted(queues: [queue])
                    case .skipped:
                        self.logger.info("missed ticks skipped (catch-up none)", metadata: ["schedule": "\(name)"])
                    case .invalid(let message):
                        if unparsable.insert(name).inserted {
                            self.logger.error(
                                "cannot tick a schedule: its expression does not parse here; another runner may", metadata: ["schedule": "\(name)", "error": "\(message)"])
                        }
                    case .nothing, .scheduled:
                        break
                    }
                }
                if ContinuousClock.now - lastPrune > .seconds(600) {
                    try await self.store.pruneTicks()
                    lastPrune = .now
                }
                backoff.reset()
                let wait = min(nextIn ?? Self.longestWait, Self.longestWait)
                try? await Task.sleep(for: max(wait, .milliseconds(5)))
            } catch {
                if Task.isCancelled { return }
                let delay = backoff.next()
                self.logger.warning("scheduling failed; retrying", metadata: ["error": "\(describe(error))", "retry.in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }
}
