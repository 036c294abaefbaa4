import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import OpenAPIRuntime
import OpenAPIURLSession
import Skipper
import Testing
import TestSupport

@testable import API

/// Runs `body` with a client generated from the committed document (openapi.yaml beside this file), talking HTTP to a
/// live skipper-api on 127.0.0.1 that requires `token`, on a fresh migrated database.
func withGeneratedClient(
    token: String = "client-token", _ body: @Sendable (TestDatabase, Client) async throws -> Void
) async throws {
    try await withTestDatabase { db in
        var config = try SkipperConfig(environment: [:])
        config.database = db.config
        config.apiTokens = [token]
        config.host = "127.0.0.1"
        config.port = 0
        // Other suites load this 2-core machine; requests here are not about the 503 deadline.
        config.databaseTimeout = .seconds(15)
        let app = try await buildApplication(config: config, logger: Logger(label: "test"))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let generated = Client(
                serverURL: URL(string: "http://127.0.0.1:\(port)")!,
                // The API writes timestamps with milliseconds (RFC 3339 allows them; the default transcoder does not).
                configuration: Configuration(dateTranscoder: .iso8601WithFractionalSeconds), transport: URLSessionTransport(),
                middlewares: [BearerToken(token: token)])
            try await body(db, generated)
        }
    }
}

/// Adds `Authorization: Bearer <token>` to every request of the generated client.
struct BearerToken: ClientMiddleware {
    let token: String

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(self.token)"
        return try await next(request, body, baseURL)
    }
}

/// The committed copy of the document, which the generator builds the client from.
let committedDocumentURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("openapi.yaml")
