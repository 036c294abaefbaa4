import Testing

@testable import Skipper

@Suite struct RunnerConfigTests {
    @Test func durationsAndDefaults() throws {
        let config = try RunnerConfig(environment: ["RESCUE_AFTER": "3s", "SHUTDOWN_GRACE": "500ms", "QUEUES": "a, b", "WORKERS": "4"])
        #expect(config.rescueAfter == .seconds(3))
        #expect(config.heartbeatInterval == .seconds(1))
        #expect(config.shutdownGrace == .milliseconds(500))
        #expect(config.queues == ["a", "b"])
        #expect(config.workers == 4)
        let defaults = try RunnerConfig(environment: [:])
        #expect(defaults.rescueAfter == .seconds(30) && defaults.heartbeatInterval == .seconds(5))
        #expect(defaults.retention == .seconds(7 * 86_400))
        #expect(try RunnerConfig(environment: ["RETENTION": "7d"]).retention == .seconds(604_800))
    }

    @Test func badValuesNameTheirVariable() {
        #expect { try RunnerConfig(environment: ["WORKERS": "0"]) } throws: { ($0 as? ConfigError)?.name == "WORKERS" }
        #expect { try RunnerConfig(environment: ["RESCUE_AFTER": "soon"]) } throws: { ($0 as? ConfigError)?.name == "RESCUE_AFTER" }
        #expect { try RunnerConfig(environment: ["QUEUES": " , "]) } throws: { ($0 as? ConfigError)?.name == "QUEUES" }
    }

    /// Values that trapped (1e300 s overflowed the conversion) or spun (a poll interval that rounds to 0 ms) are
    /// errors naming the variable and the allowed range.
    @Test func absurdValuesAreRefusedWithTheirRange() throws {
        for (name, value) in [
            ("RESCUE_AFTER", "1e300"), ("RESCUE_AFTER", "0.0001ms"), ("POLL_INTERVAL", "0"), ("POLL_INTERVAL", "1e-9"),
            ("CANCEL_SWEEP", "-5s"), ("PROGRESS_INTERVAL", "nan"), ("RETENTION", "inf"), ("SHUTDOWN_GRACE", "1e20d"),
            ("WORKERS", "99999999999999999999"), ("CLAIM_BATCH", "100000"), ("BATCH_SIZE", "5"), ("MAINTENANCE_INTERVAL", "1ms"),
        ] {
            #expect { try RunnerConfig(environment: [name: value]) } throws: { error in
                guard let error = error as? ConfigError else { return false }
                return error.name == name && error.message.contains("from ")
            }
        }
        #expect(try RunnerConfig(environment: ["SHUTDOWN_GRACE": "0"]).shutdownGrace == .zero)
        #expect(try RunnerConfig(environment: ["RESCUE_AFTER": "1d"]).rescueAfter == .seconds(86_400))
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
