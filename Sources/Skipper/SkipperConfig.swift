import Foundation
import Logging

/// Every setting of Skipper's processes, read from the environment in one place, with the defaults here.
public struct SkipperConfig: Sendable {
    /// The database (`DATABASE_URL`, or `DB_HOST`/`DB_PORT`/`DB_USER`/`DB_PASSWORD`/`DB_NAME`).
    public var database: DatabaseConfig
    /// `PORT`: the API's TCP port. Default 8080.
    public var port = 8080
    /// `HOST`: the API's bind address. Default `0.0.0.0` when `API_TOKENS` is set, else `127.0.0.1`.
    public var host: String
    /// `API_TOKENS`: comma-separated bearer tokens; empty means no authentication (and a loopback-only bind).
    public var apiTokens: [String] = []
    /// `LOG_LEVEL`: trace, debug, info, notice, warning, error or critical. Default info.
    public var logLevel: Logger.Level = .info
    /// `DB_POOL_SIZE`: the most connections one process opens. Default 20.
    public var poolSize = 20
    /// `DB_TIMEOUT`: how long the API waits for PostgreSQL before answering 503 DATABASE_UNAVAILABLE. Default 2 s.
    public var databaseTimeout: Duration = .seconds(2)

    /// Reads the environment; a value that cannot be used throws an error naming its variable.
    public init(environment env: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) {
        self.database = try DatabaseConfig(environment: env)
        if let v = env["PORT"] { self.port = try ConfigError.port(v, name: "PORT") }
        if let v = env["API_TOKENS"] {
            self.apiTokens = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        self.host = env["HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? (self.apiTokens.isEmpty ? "127.0.0.1" : "0.0.0.0")
        if let v = env["LOG_LEVEL"] {
            guard let level = Logger.Level(rawValue: v.lowercased()) else {
                throw ConfigError(name: "LOG_LEVEL", message: "must be trace, debug, info, notice, warning, error or critical")
            }
            self.logLevel = level
        }
        if let v = env["DB_POOL_SIZE"] { self.poolSize = try ConfigError.positiveInt(v, name: "DB_POOL_SIZE") }
        if let v = env["DB_TIMEOUT"] { self.databaseTimeout = try ConfigError.duration(v, name: "DB_TIMEOUT") }
    }
}
