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
