import Hummingbird
import Synchronization

/// The router's own route list (Hummingbird's `router.routes`), taken once every route is registered, so that a
/// known path with the wrong method answers 405 with `Allow` instead of 404; and the paths the document marks open
/// (`security: []`), which the auth middleware lets through without a token.
final class RouteIndex: Sendable {
    private let routes = Mutex<[(method: HTTPRequest.Method, path: RouterPath)]>([])
    private let open = Mutex<[RouterPath]>([])

    /// Takes the router's routes and the open endpoints; call after the last route is added.
    func load(from api: APIRoutes) {
        let routes = api.router.routes.map { (method: $0.method, path: $0.path) }
        self.routes.withLock { $0 = routes }
        let open = api.endpoints.filter(\.open).map { RouterPath($0.path) }
        self.open.withLock { $0 = open }
    }

    /// The methods routed for a concrete request path. The router takes a literal segment before a parameter
    /// (`/jobs/settlement` is never `/jobs/{id}`), so only the routes of the most specific matching pattern count.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return self.routes.withLock { routes in
            let matching = routes.filter { Self.matches($0.path, segments) }
            guard let best = matching.map(\.path).max(by: { Self.literals($0).lexicographicallyPrecedes(Self.literals($1)) }) else {
                return []
            }
            return matching.filter { $0.path == best }.map(\.method)
        }
    }

    /// Whether a request path's segments fit the pattern (a parameter takes any one segment).
    private static func matches(_ pattern: RouterPath, _ segments: [Substring]) -> Bool {
        pattern.components.count == segments.count && zip(pattern.components, segments).allSatisfy { $0 ~= $1 }
    }

    /// 1 for each literal segment of the pattern, 0 for the others.
    private static func literals(_ path: RouterPath) -> [Int] {
        // An element equals its own text only when it is a literal.
        path.components.map { $0 == $0.description ? 1 : 0 }
    }

    /// Whether `path` is served without a token (/health, /ready and the dashboard's page and files).
    func isOpen(_ path: String) -> Bool {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return self.open.withLock { open in
            open.contains { Self.matches($0, segments) }
        }
    }
}
