import Foundation
import Skipper
import Testing
import TestSupport

@Suite struct ConfigTests {
    @Test func databaseURLIsParsed() throws {
        let config = try DatabaseConfig(url: "postgres://app:p%40ss@db.internal:6543/shop?sslmode=require")
        #expect(config == DatabaseConfig(host: "db.internal", port: 6543, username: "app", password: "p@ss", database: "shop", tls: .require))
        #expect(config.url() == "postgres://app:xxxxx@db.internal:6543/shop?sslmode=require")
    }

    @Test func seedStyleVariablesAreUsedWithoutDatabaseURL() throws {
        let config = try DatabaseConfig(environment: ["DB_HOST": "pg", "DB_PORT": "5433", "DB_USER": "u", "DB_PASSWORD": "pw", "DB_NAME": "n"])
        #expect(config == DatabaseConfig(host: "pg", port: 5433, username: "u", password: "pw", database: "n"))
    }

    @Test func badValuesNameTheirVariable() throws {
        #expect(throws: ConfigError.self) { try DatabaseConfig(environment: ["DB_PORT": "eighty"]) }
        #expect { try DatabaseConfig(url: "mysql://x@y/z") } throws: { ($0 as? ConfigError)?.name == "DATABASE_URL" }
        #expect { try SkipperConfig(environment: ["PORT": "0"]) } throws: { ($0 as? ConfigError)?.name == "PORT" }
        #expect { try SkipperConfig(environment: ["LOG_LEVEL": "loud"]) } throws: { ($0 as? ConfigError)?.name == "LOG_LEVEL" }
        #expect { try SkipperConfig(environment: ["DB_POOLER": "pgpool"]) } throws: { ($0 as? ConfigError)?.name == "DB_POOLER" }
        #expect { try RunnerConfig.fromEnvironment(["DB_POOLER": "session"]) } throws: { ($0 as? ConfigError)?.name == "DB_POOLER" }
        #expect { try SkipperConfig(environment: ["LISTEN_DATABASE_URL": "redis://x"]) } throws: { ($0 as? ConfigError)?.name == "LISTEN_DATABASE_URL" }
        // LISTEN through the PgBouncer itself: refused, naming it.
        #expect {
            try SkipperConfig(environment: ["DATABASE_URL": "postgres://u@pool:6432/d", "DB_POOLER": "pgbouncer", "LISTEN_DATABASE_URL": "postgres://u@pool:6432/d"])
        } throws: { ($0 as? ConfigError)?.name == "LISTEN_DATABASE_URL" && "\($0)".contains("pool:6432") }
        // A host URLComponents cannot read is refused, not replaced by 127.0.0.1.
        let long = String(repeating: "h", count: 4000)
        #expect { try SkipperConfig(environment: ["DATABASE_URL": "postgres://u:p@\(long):5432/d"]) } throws: { ($0 as? ConfigError)?.name == "DATABASE_URL" }
        #expect { try SkipperConfig(environment: ["DB_POOLER": "pgbouncer", "LISTEN_DATABASE_URL": "postgres://u@\(long):5432/d"]) } throws: {
            ($0 as? ConfigError)?.name == "LISTEN_DATABASE_URL"
        }
        #expect(try DatabaseConfig(url: "postgres://u@db.example:5433/d").host == "db.example")
        #expect(try DatabaseConfig(url: "postgres:///d").host == "127.0.0.1")
        #expect(try DatabaseConfig(url: "postgres://[::1]:5433/d").port == 5433)
    }

    /// Behind a transaction-pooling PgBouncer no session setting goes in the startup packet (PgBouncer refuses it).
    @Test func aPooledDatabaseSendsNoSessionSettings() throws {
        let direct = try SkipperConfig(environment: ["DATABASE_URL": "postgres://u@h:6432/d"])
        let pooled = try SkipperConfig(environment: ["DATABASE_URL": "postgres://u@h:6432/d", "DB_POOLER": "pgbouncer", "LISTEN_DATABASE_URL": "postgres://u@h:5432/d"])
        #expect(!direct.database.pooled && pooled.database.pooled)
        #expect(pooled.listenDatabase?.port == 5432 && pooled.listenDatabase?.pooled == false)
        func names(_ config: SkipperConfig) -> [String] {
            config.database.clientConfiguration(applicationName: "t", statementTimeout: .seconds(2)).options.additionalStartupParameters.map(\.0)
        }
        #expect(names(direct) == ["application_name", "statement_timeout", "idle_in_transaction_session_timeout"])
        #expect(names(pooled) == ["application_name"])
        #expect(try RunnerConfig.fromEnvironment(["DB_POOLER": "pgbouncer"]).pooled)
    }

    @Test func withoutTokensTheAPIBindsLoopbackOnly() throws {
        #expect(try SkipperConfig(environment: [:]).host == "127.0.0.1")
        #expect(try SkipperConfig(environment: ["API_TOKENS": "a, b"]).host == "0.0.0.0")
        #expect(try SkipperConfig(environment: ["API_TOKENS": "a, b"]).apiTokens == ["a", "b"])
    }

    /// An unauthenticated API beyond loopback only when told that something in front authenticates.
    @Test func anUnauthenticatedAPIRefusesToListenBeyondLoopback() throws {
        for host in ["0.0.0.0", "::", "10.1.2.3", "api.example.com"] {
            #expect { try SkipperConfig(environment: ["HOST": host]) } throws: { ($0 as? ConfigError)?.name == "HOST" }
            #expect(try SkipperConfig(environment: ["HOST": host, "API_AUTH": "none"]).host == host)
            #expect(try SkipperConfig(environment: ["HOST": host, "API_TOKENS": "t"]).host == host)
        }
        for host in ["127.0.0.1", "127.0.0.2", "localhost", "::1"] { #expect(try SkipperConfig(environment: ["HOST": host]).host == host) }
        #expect { try SkipperConfig(environment: ["API_AUTH": "off"]) } throws: { ($0 as? ConfigError)?.name == "API_AUTH" }
        #expect { try SkipperConfig(environment: ["DB_TIMEOUT": "1e300"]) } throws: { ($0 as? ConfigError)?.name == "DB_TIMEOUT" }
    }
}
