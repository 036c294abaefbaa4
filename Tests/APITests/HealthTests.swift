import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Skipper
import Testing
import TestSupport

@testable import API

@Suite struct HealthTests {
    @Test func healthAnswersWithoutTheDatabase() async throws {
        // /health is about the process: it answers even when PostgreSQL is unreachable.
        var config = try SkipperConfig(environment: [:])
        config.database = DatabaseConfig(host: "127.0.0.1", port: 1, username: "nobody", database: "nothing", tls: .disable)
        let app = try await buildApplication(config: config, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ok"}"#)
            }
        }
    }
}
