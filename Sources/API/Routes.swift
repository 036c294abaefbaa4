import Hummingbird
import Synchronization

/// The router's own route list (Hummingbird's `router.routes`), taken once every route is registered, so that a
/// known path with the wrong method answers 405 with `Allow` instead of 404.
final class RouteIndex: Sendable {
    private let routes = Mutex<[(method: HTTPRequest.Method, path: RouterPath)]>([])

    /// Takes the router's routes; call after the last route is added.
    func load(from router: Router<APIRequestContext>) {
        let routes = router.routes.map { (method: $0.method, path: $0.path) }
        self.routes.withLock { $0 = routes }
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
}
