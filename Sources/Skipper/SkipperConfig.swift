import Foundation
import Logging

/// Every setting of Skipper's processes, read from the environment in one place, with the defaults here.
public struct SkipperConfig: Sendable {
    /// The database (`DATABASE_URL`, or `DB_HOST`/`DB_PORT`/`DB_USER`/`DB_PASSWORD`/`DB_NAME`; `DB_POOLER`).
    public var database: DatabaseConfig
    /// `LISTEN_DATABASE_URL`: behind a transaction-pooling PgBouncer, a direct connection to PostgreSQL for LISTEN.
    public var listenDatabase: DatabaseConfig?
    /// `PORT`: the API's TCP port. Default 8080.
    public var port = 8080
    /// `HOST`: the API's bind address. Default `0.0.0.0` when `API_TOKENS` is set, else `127.0.0.1`.
    public var host: String
    /// `API_TOKENS`: comma-separated bearer tokens; empty means no authentication, which the API allows only on a
    /// loopback address unless `API_AUTH=none` says something in front of it authenticates.
    public var apiTokens: [String] = []
    /// `API_AUTH=none`: serve without tokens beyond loopback, because a proxy or gateway in front authenticates.
    public var authenticationDisabled = false
    /// `LOG_LEVEL`: trace, debug, info, notice, warning, error or critical. Default info.
    public var logLevel: Logger.Level = .info
    /// `LOG_FORMAT`: `text` (default) or `json`, one object per line.
    public var logFormat: LogFormat = .text
    /// `DB_POOL_SIZE`: the most connections one process opens. Default 20.
    public var poolSize = 20
    /// `DB_TIMEOUT`: how long the API waits for PostgreSQL before answering 503 DATABASE_UNAVAILABLE; its
    /// connections' `statement_timeout`. Default 2 s.
    public var databaseTimeout: Duration = .seconds(2)
    /// `SSE_MAX_STREAMS`: the most `GET /jobs/{id}/events` streams one API process serves at once; beyond, 503 with
    /// `Retry-After`. Default 500.
    public var maxEventStreams = 500
    /// `CHART_JS`: the Chart.js file the dashboard's charts load (UMD build). Default Debian's libjs-chart.js,
    /// `/usr/share/javascript/chart.js/chart.min.js`.
    public var chartJS = "/usr/share/javascript/chart.js/chart.min.js"

    /// Reads the environment; a value that cannot be used throws an error naming its variable.
    public init(environment env: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) {
        self.database = try DatabaseConfig(environment: env)
        self.listenDatabase = try DatabaseConfig.listenDatabase(environment: env)
        if let v = env["PORT"] { self.port = try ConfigError.port(v, name: "PORT") }
        if let v = env["API_TOKENS"] {
            self.apiTokens = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let v = env["API_AUTH"], !v.isEmpty {
            guard v.lowercased() == "none" else {
                throw ConfigError(name: "API_AUTH", message: "the only value is 'none' (something in front of the API authenticates), not '\(v)'")
            }
            self.authenticationDisabled = true
        }
        self.host = env["HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? (self.apiTokens.isEmpty ? "127.0.0.1" : "0.0.0.0")
        if self.apiTokens.isEmpty, !self.authenticationDisabled, !Self.isLoopback(self.host) {
            throw ConfigError(
                name: "HOST",
                message: "'\(self.host)' is reachable beyond this machine, and API_TOKENS is unset: set API_TOKENS, "
                    + "or API_AUTH=none if a proxy in front of the API authenticates")
        }
        if let v = env["LOG_LEVEL"] {
            guard let level = Logger.Level(rawValue: v.lowercased()) else {
                throw ConfigError(name: "LOG_LEVEL", message: "must be trace, debug, info, notice, warning, error or critical")
            }
            self.logLevel = level
        }
        if let v = env["LOG_FORMAT"], !v.isEmpty {
            guard let format = LogFormat(rawValue: v.lowercased()) else { throw ConfigError(name: "LOG_FORMAT", message: "must be text or json, not '\(v)'") }
            self.logFormat = format
        }
        if let v = env["DB_POOL_SIZE"] { self.poolSize = try ConfigError.integer(v, name: "DB_POOL_SIZE", in: 1...1000) }
        if let v = env["SSE_MAX_STREAMS"] { self.maxEventStreams = try ConfigError.integer(v, name: "SSE_MAX_STREAMS", in: 1...100_000) }
        if let v = env["CHART_JS"], !v.isEmpty { self.chartJS = v }
        if let v = env["DB_TIMEOUT"] {
            self.databaseTimeout = try ConfigError.duration(v, name: "DB_TIMEOUT", in: .milliseconds(100) ... .seconds(3600))
        }
    }

    /// True for the loopback interface: `localhost`, 127.0.0.0/8 and `::1`.
    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
