import Foundation
import Logging
import PostgresNIO
import Testing

@testable import Skipper

@Suite struct RunnerConfigTests {
    @Test func durationsAndDefaults() throws {
        let config = try RunnerConfig.fromEnvironment(["RESCUE_AFTER": "3s", "SHUTDOWN_GRACE": "500ms", "QUEUES": "a, b", "WORKERS": "4"])
        #expect(config.rescueAfter == .seconds(3))
        #expect(config.heartbeatInterval == .seconds(1))
        #expect(config.shutdownGrace == .milliseconds(500))
        #expect(config.queues == ["a", "b"])
        #expect(config.workers == 4)
        let defaults = try RunnerConfig.fromEnvironment([:])
        #expect(defaults.rescueAfter == .seconds(30) && defaults.heartbeatInterval == .seconds(5))
        #expect(defaults.retention == .seconds(7 * 86_400))
        #expect(try RunnerConfig.fromEnvironment(["RETENTION": "7d"]).retention == .seconds(604_800))
    }

    /// A runner built in code reads nothing from the process environment (a host app's own WORKERS or QUEUES leaked
    /// in), and values derived from others follow fields set after construction (they were computed once, at init).
    @Test func aConfigBuiltInCodeIgnoresTheEnvironmentAndDerivesWhenRead() throws {
        setenv("WORKERS", "3", 1)
        setenv("QUEUES", "hosts-own-queue", 1)
        defer { unsetenv("WORKERS"); unsetenv("QUEUES") }
        var config = RunnerConfig()
        #expect(config.workers == 8 && config.queues == ["default"])
        #expect(try RunnerConfig.fromEnvironment().workers == 3)
        #expect(config.cancelSweep == .seconds(2))
        config.pollOnly = true
        config.pollInterval = .milliseconds(300)
        #expect(config.cancelSweep == .milliseconds(300), "poll-only: cancels arrive by the sweep, as often as the poll")
        config.rescueAfter = .seconds(3)
        #expect(config.heartbeatInterval == .seconds(1) && config.maintenanceInterval == .seconds(1))
        config.maintenanceIntervalSetting = .seconds(7)
        #expect(config.maintenanceInterval == .seconds(7))
    }

    /// Two handlers of one kind stopped the process with a precondition; now the runner cannot be built, with a
    /// ConfigError naming the kind, and neither can one with no handler.
    @Test func duplicateKindsAreAnErrorNotATrap() throws {
        let postgres = PostgresClient(configuration: .init(host: "127.0.0.1", port: 9, username: "u", password: nil, database: "d", tls: .disable))
        let logger = Logger(label: "test")
        #expect {
            try JobRunner(postgres: postgres, config: RunnerConfig(), handlers: [AnyJobHandler(BuiltIn.Noop()), AnyJobHandler(BuiltIn.Noop())], logger: logger)
        } throws: { ($0 as? ConfigError) == ConfigError(name: "handlers", message: "two handlers for kind \"noop\"") }
        #expect { try JobRunner(postgres: postgres, config: RunnerConfig(), handlers: [], logger: logger) } throws: {
            ($0 as? ConfigError)?.name == "handlers"
        }
        #expect(try JobRunner(postgres: postgres, config: RunnerConfig(), handlers: BuiltIn.handlers, logger: logger).id.isEmpty == false)
        // Fields set in code are held to the environment's bounds: a zero lease made the heartbeat spin.
        for (field, change) in [
            ("RESCUE_AFTER", { (c: inout RunnerConfig) in c.rescueAfter = .zero }), ("POLL_INTERVAL", { $0.pollInterval = .zero }),
            ("RETENTION", { $0.retention = .seconds(1) }), ("WORKERS", { $0.workers = 0 }), ("QUEUES", { $0.queues = [] }),
            ("MAINTENANCE_INTERVAL", { $0.maintenanceIntervalSetting = .milliseconds(1) }),
        ] as [(String, (inout RunnerConfig) -> Void)] {
            var config = RunnerConfig()
            change(&config)
            #expect { try JobRunner(postgres: postgres, config: config, handlers: BuiltIn.handlers, logger: logger) } throws: {
                ($0 as? ConfigError)?.name.hasPrefix(field) == true
            }
        }
    }

    @Test func badValuesNameTheirVariable() {
        #expect { try RunnerConfig.fromEnvironment(["WORKERS": "0"]) } throws: { ($0 as? ConfigError)?.name == "WORKERS" }
        #expect { try RunnerConfig.fromEnvironment(["RESCUE_AFTER": "soon"]) } throws: { ($0 as? ConfigError)?.name == "RESCUE_AFTER" }
        #expect { try RunnerConfig.fromEnvironment(["QUEUES": " , "]) } throws: { ($0 as? ConfigError)?.name == "QUEUES" }
    }

    /// Values that trapped (1e300 s overflowed the conversion) or spun (a poll interval that rounds to 0 ms) are
    /// errors naming the variable and the allowed range.
    @Test func absurdValuesAreRefusedWithTheirRange() throws {
        for (name, value) in [
            ("RESCUE_AFTER", "1e300"), ("RESCUE_AFTER", "0.0001ms"), ("POLL_INTERVAL", "0"), ("POLL_INTERVAL", "1e-9"),
            ("CANCEL_SWEEP", "-5s"), ("PROGRESS_INTERVAL", "nan"), ("RETENTION", "inf"), ("SHUTDOWN_GRACE", "1e20d"),
            ("WORKERS", "99999999999999999999"), ("CLAIM_BATCH", "100000"), ("BATCH_SIZE", "5"), ("MAINTENANCE_INTERVAL", "1ms"),
        ] {
            #expect { try RunnerConfig.fromEnvironment([name: value]) } throws: { error in
                guard let error = error as? ConfigError else { return false }
                return error.name == name && error.message.contains("from ")
            }
        }
        #expect(try RunnerConfig.fromEnvironment(["SHUTDOWN_GRACE": "0"]).shutdownGrace == .zero)
        #expect(try RunnerConfig.fromEnvironment(["RESCUE_AFTER": "1d"]).rescueAfter == .seconds(86_400))
    }

    @Test func backoffIsAttemptToTheFourthWithinTenPercent() {
        for attempt in Int32(1)...5 {
            let base = Double(attempt * attempt * attempt * attempt)
            let delay = Backoff.standard(afterAttempt: attempt)
            let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
            #expect(seconds >= base * 0.899 && seconds <= base * 1.101)
        }
    }
}
