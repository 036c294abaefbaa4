import Hummingbird
import Synchronization

/// Every route of the API, registered on the router and remembered, so that a known path with the wrong method
/// answers 405 with `Allow`, and a test can hold the routes against the OpenAPI document.
struct Routes {
    typealias Handler = @Sendable (Request, APIRequestContext) async throws -> Response

    let router: Router<APIRequestContext>
    let table = RouteTable()

    func add(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
        self.table.add(RouteTable.Route(method: method, path: path))
        self.router.on(RouterPath(path), method: method, use: handler)
    }
}

/// The routes registered, readable while the server runs.
final class RouteTable: Sendable {
    struct Route: Sendable, Hashable {
        let method: HTTPRequest.Method
        /// Hummingbird's pattern, e.g. `/jobs/:id`.
        let path: String
    }

    private let table = Mutex<[Route]>([])

    func add(_ route: Route) { self.table.withLock { $0.append(route) } }

    var all: [Route] { self.table.withLock { $0 } }

    /// The methods routed for a concrete request path.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return self.all.filter { Self.matches($0.path, segments) }.map(\.method)
    }

    private static func matches(_ pattern: String, _ segments: [Substring]) -> Bool {
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == segments.count else { return false }
        for (part, segment) in zip(parts, segments) {
            if part.hasPrefix(":") { continue }
            if part.hasPrefix("{"), let close = part.firstIndex(of: "}") {
                // `{name}.csv`: a capture with a fixed suffix.
                if segment.hasSuffix(part[part.index(after: close)...]) { continue }
                return false
            }
            if part != segment { return false }
        }
        return true
    }
}
