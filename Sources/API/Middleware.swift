import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOHTTP1
import Prometheus
import Synchronization

/// Outermost: gives every request an id (`X-Request-ID`, accepted or generated, echoed on the response), and
/// turns every error into the API's JSON shape — 404 and 405 for unknown routes, the error's own status for
/// ours, 500 only for our own bugs — so no client ever sees an HTML page or an empty body.
struct RequestMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let routes: RouteIndex
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = Self.requestID(request.headers[.requestID])
        context.logger[metadataKey: "request.id"] = "\(context.requestID)"
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = try error.response(from: request, context: context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = self.routes.methods(for: request.uri.path)
            if allowed.isEmpty {
                response = try APIError.notFound("\(request.uri.path)").response(from: request, context: context)
            } else {
                response = try APIError(
                    status: .methodNotAllowed, code: "METHOD_NOT_ALLOWED",
                    message: "\(request.method) is not allowed on \(request.uri.path); use \(allowed.map(\.rawValue).joined(separator: ", "))",
                    headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")]
                ).response(from: request, context: context)
            }
        } catch let error as HTTPParserError {
            // The body could not be read as HTTP (a malformed chunk, say): the client's fault, not ours.
            response = jsonResponse(.badRequest, APIError.body(code: "MALFORMED_REQUEST", message: "the request is not valid HTTP: \(error)"))
        } catch let error as any HTTPResponseError {
            let code = error.status.code == 413 ? "PAYLOAD_TOO_LARGE" : "HTTP_\(error.status.code)"
            response = jsonResponse(error.status, APIError.body(code: code, message: error.status.reasonPhrase))
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "http.path": "\(request.uri.path)"])
            response = jsonResponse(.internalServerError, APIError.body(code: "INTERNAL", message: "an internal error occurred; see the server log"))
        }
        response.headers[.requestID] = context.requestID
        return response
    }

    /// The client's id when it is short and printable, else a new UUID.
    static func requestID(_ header: String?) -> String {
        if let header, !header.isEmpty, header.count <= 128,
            header.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        {
            return header
        }
        return UUID().uuidString.lowercased()
    }
}

/// `Authorization: Bearer <token>` on every route but those the document marks open (/health and /ready), compared in
/// constant time.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let tokens: [[UInt8]]
    let routes: RouteIndex

    init(tokens: [String], routes: RouteIndex) {
        self.tokens = tokens.map { Array($0.utf8) }
        self.routes = routes
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if self.tokens.isEmpty || self.routes.isOpen(request.uri.path) { return try await next(request, context) }
        // The scheme's name is case-insensitive (RFC 9110 11.1).
        guard let header = request.headers[.authorization], header.prefix(7).lowercased() == "bearer " else {
            throw Self.unauthorized("send Authorization: Bearer <token>")
        }
        let presented = Array(header.dropFirst("Bearer ".count).utf8)
        // Compare with every token, always, so the time taken says nothing about which or how much matched.
        var matched = false
        for token in self.tokens { matched = Self.constantTimeEqual(token, presented) || matched }
        guard matched else { throw Self.unauthorized("the bearer token is not valid") }
        return try await next(request, context)
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(status: .unauthorized, code: "UNAUTHORIZED", message: message, headers: [.wwwAuthenticate: "Bearer"])
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0xFF)
        }
        return difference == 0
    }
}

/// Requests by route and status, and a latency histogram by route, in Prometheus form.
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let instruments: HTTPInstruments

    init(registry: PrometheusCollectorRegistry) {
        self.instruments = HTTPInstruments(registry: registry)
    }

    static let buckets: [Duration] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500].map { .milliseconds($0) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        // The route pattern, not the path: ids must not explode the label set.
        let route = context.endpointPath ?? "unmatched"
        let (counter, histogram) = self.instruments.get(method: request.method.rawValue, route: route, status: response.status.code)
        counter.increment()
        histogram.recordNanoseconds(Int64((ContinuousClock.now - start) / .nanoseconds(1)))
        return response
    }
}

/// The counter and histogram of each (method, route, status), made once: a request costs one dictionary lookup.
final class HTTPInstruments: Sendable {
    struct Key: Hashable {
        let method: String
        let route: String
        let status: Int
    }

    let registry: PrometheusCollectorRegistry
    private let made = Mutex<[Key: (Counter, DurationHistogram)]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func get(method: String, route: String, status: Int) -> (Counter, DurationHistogram) {
        let key = Key(method: method, route: route, status: status)
        if let instruments = self.made.withLock({ $0[key] }) { return instruments }
        let instruments = (
            self.registry.makeCounter(
                name: "skipper_http_requests_total", labels: [("method", method), ("route", route), ("status", String(status))]),
            self.registry.makeDurationHistogram(
                name: "skipper_http_request_duration_seconds", labels: [("method", method), ("route", route)],
                buckets: MetricsMiddleware.buckets)
        )
        self.made.withLock { $0[key] = instruments }
        return instruments
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-ID")!
}
