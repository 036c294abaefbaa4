import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import Skipper
import TestSupport

@testable import API

/// Runs `body` against a live skipper-api server (real HTTP on 127.0.0.1) on a fresh migrated database.
func withAPI(
    tokens: [String] = [], kinds: [String] = ["noop", "sleep", "fail"], databaseTimeout: Duration = .seconds(15),
    configure: (inout SkipperConfig) -> Void = { _ in },
    _ body: @Sendable (TestDatabase, any TestClientProtocol) async throws -> Void
) async throws {
    try await withTestDatabase { db in
        // The durable registry a runner fills when it starts; tests that need a real runner start one.
        for kind in kinds { _ = try await db.query("INSERT INTO skipper.kinds (kind) VALUES (\(kind))") }
        var config = try SkipperConfig(environment: [:])
        config.database = db.config
        config.apiTokens = tokens
        config.port = 0
        // Other suites load this 2-core machine heavily; requests here are not about the 503 deadline (the
        // readiness test keeps the default 2 s).
        config.databaseTimeout = databaseTimeout
        configure(&config)
        let app = try await buildApplication(config: config, logger: Logger(label: "test"))
        try await app.test(.live) { client in try await body(db, client) }
    }
}

extension TestClientProtocol {
    func send(
        _ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = [:]
    ) async throws -> APIResult {
        let response = try await self.execute(
            uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }) { $0 }
        return APIResult(status: response.status, headers: response.headers, text: String(buffer: response.body))
    }
}

/// A response with its body as text and, when it is a JSON object, as a dictionary.
struct APIResult: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let text: String

    var json: [String: any Sendable] {
        ((try? JSONSerialization.jsonObject(with: Data(self.text.utf8))) as? [String: any Sendable]) ?? [:]
    }
    var errorCode: String? { self.json["error"] as? String }
    func int(_ key: String) -> Int64? { (self.json[key] as? NSNumber)?.int64Value }
    func string(_ key: String) -> String? { self.json[key] as? String }
}
