import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// Where PostgreSQL is and how to log in, read from `DATABASE_URL` or the seed-style `DB_*` variables.
///
/// `DATABASE_URL` wins when both are set. Its form is `postgres://user:password@host:port/database?sslmode=MODE`,
/// with `sslmode` one of `disable`, `prefer` (the default) or `require`.
/// Without `DATABASE_URL`: `DB_HOST` (default `127.0.0.1`), `DB_PORT` (`5432`), `DB_USER` (`postgres`),
/// `DB_PASSWORD` (none), `DB_NAME` (`skipper`), `DB_SSLMODE` (`prefer`).
public struct DatabaseConfig: Sendable, Equatable {
    /// How the connection uses TLS.
    public enum TLSMode: String, Sendable {
        /// Never use TLS.
        case disable
        /// Use TLS when the server offers it.
        case prefer
        /// Refuse to connect without TLS.
        case require
    }

    /// Host name or IP address of the server.
    public var host: String
    /// TCP port of the server.
    public var port: Int
    /// User name to log in as.
    public var username: String
    /// Password, if the server asks for one.
    public var password: String?
    /// Database to connect to.
    public var database: String
    /// TLS use.
    public var tls: TLSMode
    /// `DB_POOLER=pgbouncer`: the address is a transaction-pooling PgBouncer, where consecutive transactions of one
    /// connection may run on different server sessions: no session settings at connection start, no statements
    /// prepared once per connection, no LISTEN (a process takes a direct connection for it, or polls).
    public var pooled = false

    /// A configuration with every field given.
    public init(
        host: String = "127.0.0.1",
        port: Int = 5432,
        username: String = "postgres",
        password: String? = nil,
        database: String = "skipper",
        tls: TLSMode = .prefer
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Reads `DATABASE_URL`, else the `DB_*` variables, and `DB_POOLER`.
    public init(environment env: [String: String]) throws(ConfigError) {
        if let url = env["DATABASE_URL"], !url.isEmpty {
            self = try Self(url: url)
        } else {
            self.init()
            if let v = env["DB_HOST"], !v.isEmpty { self.host = v }
            if let v = env["DB_PORT"] { self.port = try ConfigError.port(v, name: "DB_PORT") }
            if let v = env["DB_USER"], !v.isEmpty { self.username = v }
            if let v = env["DB_PASSWORD"], !v.isEmpty { self.password = v }
            if let v = env["DB_NAME"], !v.isEmpty { self.database = v }
            if let v = env["DB_SSLMODE"] { self.tls = try Self.tlsMode(v, name: "DB_SSLMODE") }
        }
        self.pooled = try Self.pooled(env["DB_POOLER"])
    }

    /// `DB_POOLER`: unset, empty or `none` (direct), or `pgbouncer` (transaction pooling).
    public static func pooled(_ value: String?) throws(ConfigError) -> Bool {
        switch value?.lowercased() ?? "" {
        case "", "none": return false
        case "pgbouncer": return true
        default: throw ConfigError(name: "DB_POOLER", message: "must be none or pgbouncer (transaction pooling), not '\(value ?? "")'")
        }
    }

    /// `LISTEN_DATABASE_URL`, for a process behind a pooler: a direct connection to PostgreSQL for LISTEN alone
    /// (nil when unset: the process polls instead).
    public static func listenDatabase(environment env: [String: String]) throws(ConfigError) -> DatabaseConfig? {
        guard let url = env["LISTEN_DATABASE_URL"], !url.isEmpty else { return nil }
        let listen: DatabaseConfig
        do {
            listen = try DatabaseConfig(url: url)
        } catch {
            throw ConfigError(name: "LISTEN_DATABASE_URL", message: error.message)
        }
        // LISTEN through the pooler would stay on a server session that others then borrow, which PgBouncer then
        // complains of for good: refused when it names the pooler itself.
        if let main = try? DatabaseConfig(environment: env), main.pooled, main.host == listen.host, main.port == listen.port {
            throw ConfigError(
                name: "LISTEN_DATABASE_URL",
                message: "names the PgBouncer of DATABASE_URL (\(listen.host):\(listen.port)); it must reach PostgreSQL directly, past the pooler")
        }
        return listen
    }

    /// How a process reaches PostgreSQL, for its start-up line: direct, or through a pooler with LISTEN over a direct
    /// connection or polling; or polling only (a runner's `POLL_ONLY`), either way.
    public func connectionMode(listen: DatabaseConfig?, pollInterval: Duration? = nil, pollOnly: Bool = false) -> String {
        if pollOnly { return "polling (POLL_ONLY)" + (self.pooled ? ", through a transaction-pooling PgBouncer" : "") }
        guard self.pooled else { return "direct" }
        let wakeups = listen.map { "LISTEN over LISTEN_DATABASE_URL (\($0.host):\($0.port))" }
            ?? "polling" + (pollInterval.map { " every \(ConfigError.describe($0))" } ?? "")
        return "through a transaction-pooling PgBouncer (DB_POOLER=pgbouncer): no session settings, no prepared statements; notifications by \(wakeups)"
    }

    /// Parses a `postgres://` or `postgresql://` URL.
    public init(url: String) throws(ConfigError) {
        guard let components = URLComponents(string: url),
            let scheme = components.scheme, scheme == "postgres" || scheme == "postgresql"
        else {
            throw ConfigError(name: "DATABASE_URL", message: "must look like postgres://user:password@host:5432/database")
        }
        self.init()
        // URLComponents gives no host for one it cannot read (a few thousand characters, say): refused, not replaced
        // by the default.
        let authority = url.split(separator: "://", maxSplits: 1).dropFirst().first.map { rest in
            rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }.split(separator: "@").last.map(String.init) ?? ""
        } ?? ""
        let readHost = components.host ?? ""
        if (readHost.isEmpty && !authority.isEmpty && !authority.hasPrefix(":")) || readHost.count > 253 {
            throw ConfigError(name: "DATABASE_URL", message: "has a host that cannot be read (at most 253 characters)")
        }
        if !readHost.isEmpty { self.host = readHost }
        if let port = components.port { self.port = try ConfigError.port(String(port), name: "DATABASE_URL port") }
        if let user = components.user, !user.isEmpty { self.username = user.removingPercentEncoding ?? user }
        if let password = components.password { self.password = password.removingPercentEncoding ?? password }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? self.username : (path.removingPercentEncoding ?? path)
        for item in components.queryItems ?? [] where item.name == "sslmode" {
            self.tls = try Self.tlsMode(item.value ?? "", name: "DATABASE_URL sslmode")
        }
    }

    /// The same server with another database: tests clone databases, the migrator creates none.
    public func with(database: String) -> Self {
        var copy = self
        copy.database = database
        return copy
    }

    /// The URL form, with the password masked when `redacted`.
    public func url(redacted: Bool = true) -> String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = self.username
        if let password = self.password { components.password = redacted ? "xxxxx" : password }
        components.host = self.host
        components.port = self.port
        components.path = "/" + self.database
        if self.tls != .prefer { components.queryItems = [URLQueryItem(name: "sslmode", value: self.tls.rawValue)] }
        return components.string ?? "postgres://\(self.host):\(self.port)/\(self.database)"
    }

    /// postgres-nio's client configuration for this database. With `statementTimeout`, every connection is opened
    /// with `statement_timeout` (and `idle_in_transaction_session_timeout` at twice it), so the server itself ends a
    /// statement its client stopped waiting for (the API's `DB_TIMEOUT`).
    public func clientConfiguration(
        maxConnections: Int = 20, applicationName: String, statementTimeout: Duration? = nil
    ) -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch self.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(.makeClientConfiguration())
        case .require: tls = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: self.host,
            port: self.port,
            username: self.username,
            password: self.password,
            database: self.database,
            tls: tls
        )
        configuration.options.maximumConnections = maxConnections
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        // Behind a transaction pooler a startup parameter is a setting of whichever server session a transaction
        // lands on, and PgBouncer refuses it: set the timeouts on the role there (README, "Through PgBouncer").
        if let statementTimeout, !self.pooled {
            // Startup parameters are settings of the session, as `SET` would make them, without a round trip.
            let ms = max(1, statementTimeout.milliseconds)
            configuration.options.additionalStartupParameters += [
                ("statement_timeout", "\(ms)"), ("idle_in_transaction_session_timeout", "\(2 * ms)"),
            ]
        }
        return configuration
    }

    private static func tlsMode(_ value: String, name: String) throws(ConfigError) -> TLSMode {
        guard let mode = TLSMode(rawValue: value.lowercased()) else {
            throw ConfigError(name: name, message: "must be disable, prefer or require, not '\(value)'")
        }
        return mode
    }
}
