import Foundation

/// A configuration value that cannot be used, naming the variable or flag it came from.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// The environment variable or flag.
    public let name: String
    /// What is wrong with it.
    public let message: String

    /// An error about `name`.
    public init(name: String, message: String) {
        self.name = name
        self.message = message
    }

    public var description: String { "\(self.name): \(self.message)" }

    package static func port(_ value: String, name: String) throws(ConfigError) -> Int {
        guard let port = Int(value), (1...65535).contains(port) else {
            throw ConfigError(name: name, message: "must be a port number between 1 and 65535, not '\(value)'")
        }
        return port
    }

}

extension ConfigError {
    /// `500ms`, `30s`, `5m`, `2h`, `7d`, or a bare number of seconds, within `range`: a value outside it (1e300
    /// seconds, or one that rounds to 0 ms and would make a loop spin) is an error naming the variable.
    public static func duration(_ value: String, name: String, in range: ClosedRange<Duration>) throws(ConfigError) -> Duration {
        let text = value.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var number = text
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = String(text.dropLast(suffix.count))
            scale = factor
            break
        }
        let allowed = "from \(Self.describe(range.lowerBound)) to \(Self.describe(range.upperBound))"
        guard let amount = Double(number), amount.isFinite, amount >= 0 else {
            throw ConfigError(name: name, message: "must be a duration like 500ms, 30s, 5m or 7d (\(allowed)), not '\(value)'")
        }
        // Compared as whole milliseconds in floating point first, so a huge value cannot trap on conversion.
        let ms = (amount * scale * 1000).rounded()
        guard ms >= Double(range.lowerBound.milliseconds), ms <= Double(range.upperBound.milliseconds) else {
            throw ConfigError(name: name, message: "must be \(allowed), not '\(value)'")
        }
        return .milliseconds(Int64(ms))
    }

    /// A whole number within `range`.
    package static func integer(_ value: String, name: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let number = Int(value.trimmingCharacters(in: .whitespaces)), range.contains(number) else {
            throw ConfigError(name: name, message: "must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(value)'")
        }
        return number
    }

    /// A duration as the settings are written: `30s`, `5m`, `250ms` (the largest whole unit).
    package static func describe(_ duration: Duration) -> String {
        let ms = duration.milliseconds
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms >= size && ms % size == 0 {
            return "\(ms / size)\(unit)"
        }
        return "\(ms)ms"
    }
}
