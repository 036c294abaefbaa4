/// What OperationsController serves.
extension Endpoint {
    static let health = Endpoint(
        .get, "/health", id: "health", tag: "operations", summary: "The process is alive (does not touch the database)",
        responses: [.json(200, "Alive", APISchemas.health)], open: true)

    static let ready = Endpoint(
        .get, "/ready", id: "ready", tag: "operations", summary: "The database answers and its schema is at the version this build expects",
        responses: [
            .json(200, "Ready", APISchemas.readiness),
            .error(503, ["NOT_READY"], "NOT_READY: the database is unreachable or its schema is not at this build's version; the message says which."),
            APIResponses.internalError,
        ],
        open: true)

    static let metrics = Endpoint(
        .get, "/metrics", id: "metrics", tag: "operations",
        summary: "Prometheus metrics: HTTP requests and latency by route, event streams, QUEUED and RUNNING jobs per queue",
        responses: [
            Response(
                status: 200, description: "Prometheus text format 0.0.4; skipper_database_up is 0 when PostgreSQL did not answer",
                content: [MediaType(type: "text/plain", schema: .string())])
        ])

    static let openAPI = Endpoint(
        .get, "/openapi.yaml", id: "openAPI", tag: "operations", summary: "This document",
        responses: [
            Response(
                status: 200, description: "OpenAPI 3.1, as YAML",
                content: [MediaType(type: "application/yaml", schema: Schema(.anyObject(noNUL: false), description: "An OpenAPI 3.1 document"))])
        ])
}
