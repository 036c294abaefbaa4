import Hummingbird
import Synchronization

/// The router's own route list (Hummingbird's `router.routes`), taken once every route is registered, so that a
/// known path with the wrong method answers 405 with `Allow` instead of 404; and the paths the document marks open
/// (`security: []`), which the auth middleware lets through without a token.
final class RouteIndex: Sendable {
    private let routes = Mutex<[(method: HTTPRequest.Method, path: RouterPath)]>([])
    private let open = Mutex<Set<String>>([])

    /// Takes the router's routes and the open endpoints; call after the last route is added.
    func load(from api: APIRoutes) {
        let routes = api.router.routes.map { (method: $0.method, path: $0.path) }
        self.routes.withLock { $0 = routes }
        let open = Set(api.endpoints.filter(\.open).map(\.path))
        self.open.withLock { $0 = open }
    }

    /// The methods routed for a concrete request path.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return self.routes.withLock { routes in
            routes.filter { route in
                route.path.components.count == segments.count && zip(route.path.components, segments).allSatisfy { $0 ~= $1 }
            }.map(\.method)
        }
    }

    /// Whether `path` is served without a token (/health and /ready).
    func isOpen(_ path: String) -> Bool {
        self.open.withLock { $0.contains(path) }
    }
}
