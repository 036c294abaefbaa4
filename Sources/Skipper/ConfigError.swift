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

    static func port(_ value: String, name: String) throws(ConfigError) -> Int {
        guard let port = Int(value), (1...65535).contains(port) else {
            throw ConfigError(name: name, message: "must be a port number between 1 and 65535, not '\(value)'")
        }
        return port
    }

    static func positiveInt(_ value: String, name: String) throws(ConfigError) -> Int {
        guard let number = Int(value.trimmingCharacters(in: .whitespaces)), number > 0 else {
            throw ConfigError(name: name, message: "must be a positive whole number, not '\(value)'")
        }
        return number
    }
}

extension ConfigError {
    /// `500ms`, `30s`, `5m`, `2h`, `7d`, or a bare number of seconds.
    static func duration(_ value: String, name: String, allowZero: Bool = false) throws(ConfigError) -> Duration {
        let text = value.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var number = text
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = String(text.dropLast(suffix.count))
            scale = factor
            break
        }
        guard let amount = Double(number), amount.isFinite, amount > 0 || (allowZero && amount == 0) else {
            throw ConfigError(name: name, message: "must be a duration like 500ms, 30s, 5m or 7d, not '\(value)'")
        }
        return .milliseconds(Int64(amount * scale * 1000))
    }
}
