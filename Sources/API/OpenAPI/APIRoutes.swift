import Hummingbird

/// The route table: each route is registered with its ``Endpoint``, whose parameters and body the
/// ``RequestValidator`` checks before the handler runs, and the served document (``APIDocument``) is written from the
/// same table. A route cannot exist without its documentation, nor a documented operation without its route.
final class APIRoutes {
    typealias Handler = @Sendable (Request, APIRequestContext, Input) async throws -> Response

    let router: Router<APIRequestContext>
    private(set) var endpoints: [Endpoint] = []

    init(router: Router<APIRequestContext>) {
        self.router = router
    }

    /// Routes `endpoint.method endpoint.path` to `handler`, which gets the request's checked ``Input``.
    func add(_ endpoint: Endpoint, use handler: @escaping Handler) {
        precondition(
            !self.endpoints.contains { ($0.method == endpoint.method && $0.path == endpoint.path) || $0.id == endpoint.id },
            "\(endpoint.method) \(endpoint.path) (\(endpoint.id)) is registered twice")
        self.endpoints.append(endpoint)
        let validator = RequestValidator(endpoint: endpoint)
        self.router.on(RouterPath(endpoint.path), method: endpoint.method) { request, context in
            try await handler(request, context, try await validator.input(request, context: context))
        }
    }

    /// The document of every endpoint registered so far.
    var document: APIDocument { APIDocument(endpoints: self.endpoints) }
}
