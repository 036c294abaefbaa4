import Foundation
import Hummingbird
import Skipper

/// An error the API answers with `{"error": CODE, "message": text}` and its own status.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    var headers: HTTPFields = [:]

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = jsonResponse(self.status, Self.body(code: self.code, message: self.message))
        response.headers.append(contentsOf: self.headers)
        return response
    }

    static func body(code: String, message: String) -> String {
        #"{"error":"# + JSONText.quote(code) + #","message":"# + JSONText.quote(message) + "}"
    }

    static func notFound(_ what: String) -> Self { .init(status: .notFound, code: "NOT_FOUND", message: "\(what) not found") }
    static func invalidJSON(_ message: String) -> Self { .init(status: .badRequest, code: "INVALID_JSON", message: message) }
    /// A field of the body with the wrong type or value.
    static func invalidField(_ field: String, _ message: String) -> Self {
        .init(status: .unprocessableContent, code: "INVALID_FIELD", message: "\(field): \(message)")
    }
    /// A query parameter or path segment that cannot be used.
    static func invalidParameter(_ name: String, _ message: String) -> Self {
        .init(status: .badRequest, code: "INVALID_PARAMETER", message: "\(name): \(message)")
    }
    /// A body field holding a duration (`30s`, `500ms`) within `range`, or 422 naming `field`.
    static func duration(_ text: String, field: String, in range: ClosedRange<Duration>) throws -> Duration {
        do {
            return try ConfigError.duration(text, name: field, in: range)
        } catch {
            throw Self.invalidField(field, error.message)
        }
    }

    static let databaseUnavailable = Self(
        status: .serviceUnavailable, code: "DATABASE_UNAVAILABLE", message: "PostgreSQL did not answer in time; try again shortly")
}

/// A JSON response from JSON text.
func jsonResponse(_ status: HTTPResponse.Status, _ json: String, headers: HTTPFields = [:]) -> Response {
    var fields = headers
    fields[.contentType] = "application/json"
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: json)))
}
