import Foundation

/// Every wait between tries in Skipper: a job's retry after a failed attempt, and a service's retry after a failed
/// statement or a lost connection.
public struct Backoff: Sendable {
    /// The first delay.
    public let base: Duration
    /// The longest delay.
    public let cap: Duration
    /// Failures since the last success.
    public private(set) var failures = 0

    /// Doubles from `base` with each failure, up to `cap`.
    public init(base: Duration, cap: Duration = .seconds(5)) {
        self.base = base
        self.cap = cap
    }

    /// Records a failure and returns how long to wait before the next try.
    public mutating func next() -> Duration {
        self.failures += 1
        // 2^k with k bounded, so a long outage cannot overflow the multiplication.
        let doubled = self.base * (1 << min(self.failures - 1, 20))
        return min(doubled, self.cap)
    }

    /// A success: the next failure starts again from `base`.
    public mutating func reset() { self.failures = 0 }

    /// River's retry delay for jobs: attempt⁴ seconds, ± 10 % jitter so failures of a burst do not retry in
    /// lockstep, capped at one day.
    public static func standard(afterAttempt attempt: Int32) -> Duration {
        let base = min(pow(Double(max(attempt, 1)), 4), 86_400)
        let jitter = Double.random(in: -0.1...0.1) * base
        return .milliseconds(Int64((base + jitter) * 1000))
    }
}
