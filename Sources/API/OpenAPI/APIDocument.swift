/// The OpenAPI 3.1 document of the registered endpoints, served at `GET /openapi.yaml`: written from the route table
/// (``APIRoutes``), so a route cannot exist without its documentation nor the other way round.
struct APIDocument: Sendable {
    let endpoints: [Endpoint]

    /// The document as YAML (block style, every string double-quoted).
    var yaml: String { YAMLText.render(self.node) }

    var node: DocumentNode {
        .map([
            "openapi": .string("3.1.0"),
            "info": .map([
                "title": .string("Skipper"),
                "version": .string("1.0"),
                "description": .string(Self.overview),
            ]),
            "servers": .list([.map(["url": .string("/"), "description": .string("The server that serves this document")])]),
            "security": .list([.map(["bearer": .list([])])]),
            "tags": .list(Self.tags.map { .map(["name": .string($0.name), "description": .string($0.description)]) }),
            "paths": self.paths,
            "components": self.components,
        ])
    }

    static let overview = """
        Jobs in PostgreSQL. The API inserts jobs and reads their state; runner processes claim and run them.
        Every error is a JSON object {"error": CODE, "message": "field: what is wrong"}; each response lists the codes \
        it can carry. A request with an unknown route answers 404 NOT_FOUND; a known path with another method, 405 \
        METHOD_NOT_ALLOWED with Allow. When API_TOKENS is set, every operation but /health and /ready needs \
        `Authorization: Bearer <token>` (401 UNAUTHORIZED with WWW-Authenticate otherwise). Request bodies are JSON \
        objects of at most 1 MiB: unknown fields are refused, and null stands for a field left out. Strings are \
        measured in Unicode scalars. Timestamps are RFC 3339 in UTC with milliseconds (2026-01-31T12:00:00.000Z). \
        Every response carries X-Request-ID (the client's, or a generated one), which \
        is stored in the meta of a job the request submits and logged by the runner that runs it.
        """

    static let tags: [(name: String, description: String)] = [
        ("jobs", "Submit, read, list, cancel, retry and follow jobs"),
        ("queues", "Queues and kinds: pause, resume, concurrency and rate limits"),
        ("schedules", "Periodic jobs: one job per tick, whatever the number of runners"),
        ("shop", "The shop's orders, sales report and settlement"),
        ("operations", "Health, readiness, metrics, runners, statistics and this document"),
        ("dashboard", "The dashboard's page and files (open: the page asks for a token itself)"),
    ]

    private var paths: DocumentNode {
        var order: [String] = []
        var operations: [String: [DocumentNode.Entry]] = [:]
        for endpoint in self.endpoints {
            if operations[endpoint.path] == nil { order.append(endpoint.path) }
            operations[endpoint.path, default: []].append(.init(key: endpoint.method.rawValue.lowercased(), value: Self.operation(endpoint)))
        }
        return .map(order.map { .init(key: $0, value: .map(operations[$0]!)) })
    }

    private static func operation(_ endpoint: Endpoint) -> DocumentNode {
        let parameters = endpoint.parameters + [APIParameters.requestID]
        return .map([
            "tags": .strings([endpoint.tag]),
            "summary": .string(endpoint.summary),
            "description": endpoint.description.map(DocumentNode.string),
            "operationId": .string(endpoint.id),
            "parameters": .list(parameters.map(Self.parameter)),
            "requestBody": endpoint.body.map { body in
                .map([
                    "description": body.description.map(DocumentNode.string),
                    "required": .bool(true),
                    "content": .map(["application/json": .map(["schema": body.schema.reference])]),
                ])
            },
            "responses": .map(endpoint.allResponses.map { .init(key: String($0.status), value: Self.response($0)) }),
            "security": endpoint.open ? .list([]) : nil,
        ])
    }

    private static func parameter(_ parameter: Endpoint.Parameter) -> DocumentNode {
        if let name = parameter.componentName { return .map(["$ref": .string("#/components/parameters/\(name)")]) }
        return Self.parameterDefinition(parameter)
    }

    private static func parameterDefinition(_ parameter: Endpoint.Parameter) -> DocumentNode {
        .map([
            "name": .string(parameter.name),
            "in": .string(parameter.location.rawValue),
            "description": parameter.description.map(DocumentNode.string),
            "required": .bool(parameter.required),
            "schema": parameter.schema.reference,
        ])
    }

    private static func response(_ response: Endpoint.Response) -> DocumentNode {
        if let name = response.componentName { return .map(["$ref": .string("#/components/responses/\(name)")]) }
        return Self.responseDefinition(response)
    }

    private static func responseDefinition(_ response: Endpoint.Response) -> DocumentNode {
        let headers = [APIHeaders.requestID] + response.headers
        return .map([
            "description": .string(response.description),
            "headers": .map(headers.map { .init(key: $0.name, value: Self.header($0)) }),
            "content": response.content.isEmpty
                ? nil
                : .map(response.content.map { media in
                    .init(
                        key: media.type,
                        value: .map(["schema": media.schema.reference, "x-itemSchema": media.itemSchema?.reference]))
                }),
        ])
    }

    private static func header(_ header: Endpoint.Header) -> DocumentNode {
        if let name = header.componentName { return .map(["$ref": .string("#/components/headers/\(name)")]) }
        return Self.headerDefinition(header)
    }

    private static func headerDefinition(_ header: Endpoint.Header) -> DocumentNode {
        .map([
            "description": .string(header.description),
            "required": header.required ? .bool(true) : nil,
            "schema": header.schema.reference,
        ])
    }

    // MARK: - Components

    private var components: DocumentNode {
        var responses: [String: Endpoint.Response] = [:]
        var parameters: [String: Endpoint.Parameter] = [:]
        var headers: [String: Endpoint.Header] = [:]
        var schemas: [Schema] = []
        for endpoint in self.endpoints {
            for parameter in endpoint.parameters + [APIParameters.requestID] {
                if let name = parameter.componentName { parameters[name] = parameter }
                schemas.append(parameter.schema)
            }
            if let body = endpoint.body { schemas.append(body.schema) }
            for response in endpoint.allResponses {
                if let name = response.componentName { responses[name] = response }
                for header in [APIHeaders.requestID] + response.headers {
                    if let name = header.componentName { headers[name] = header }
                    schemas.append(header.schema)
                }
                for media in response.content { schemas += [media.schema] + (media.itemSchema.map { [$0] } ?? []) }
            }
        }
        var named: [String: Schema] = [:]
        for schema in schemas.flatMap(\.nested) {
            if let name = schema.name { named[name] = schema }
        }
        return .map([
            "schemas": .map(named.keys.sorted().map { .init(key: $0, value: named[$0]!.definition) }),
            "responses": .map(responses.keys.sorted().map { .init(key: $0, value: Self.responseDefinition(responses[$0]!)) }),
            "parameters": .map(parameters.keys.sorted().map { .init(key: $0, value: Self.parameterDefinition(parameters[$0]!)) }),
            "headers": .map(headers.keys.sorted().map { .init(key: $0, value: Self.headerDefinition(headers[$0]!)) }),
            "securitySchemes": .map([
                "bearer": .map([
                    "type": .string("http"),
                    "scheme": .string("bearer"),
                    "description": .string("One of the API_TOKENS; /health and /ready need none"),
                ])
            ]),
        ])
    }
}
