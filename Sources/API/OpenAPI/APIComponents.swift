/// Parameters many operations share.
enum APIParameters {
    static let jobID = Endpoint.Parameter(
        "id", in: .path, schema: .int64(1...Int64.max), description: "The job's id", expected: "a job id is a positive integer",
        componentName: "JobID")

    static let orderID = Endpoint.Parameter(
        "id", in: .path, schema: .string(format: "uuid"), description: "The order's id", expected: "an order id is a UUID",
        componentName: "OrderID")

    /// Taken by every operation (``RequestMiddleware``); any value is accepted, and one that is not kept is replaced.
    static let requestID = Endpoint.Parameter(
        "X-Request-ID", in: .header, schema: .string(),
        description: "The request's id for logs and the job's meta: kept when 1 to 128 printable ASCII characters, else replaced by a generated UUID",
        componentName: "RequestID")

    /// Taken by the operations that submit jobs: the trace the job joins (``TraceContext``).
    static let traceparent = Endpoint.Parameter(
        "traceparent", in: .header, schema: .string(),
        description: "W3C trace context: the submitter's trace and span (`00-<trace id>-<span id>-<flags>`), kept in the job's meta for the runner to continue; when it is missing or not valid, the API starts a new trace",
        componentName: "TraceParent")

    static let tracestate = Endpoint.Parameter(
        "tracestate", in: .header, schema: .string(),
        description: "W3C trace context's vendor data, kept in the job's meta with a valid traceparent (at most 512 printable ASCII characters, else dropped)",
        componentName: "TraceState")
}

/// Response headers many responses share.
enum APIHeaders {
    /// On every response (``RequestMiddleware``).
    static let requestID = Endpoint.Header(
        name: "X-Request-ID", description: "The request's id: the client's own, or a generated UUID", schema: .string(minLength: 1, maxLength: 128),
        required: true, componentName: "RequestID")

    static let location = Endpoint.Header(
        name: "Location", description: "Where the resource is read", schema: .string(), required: true)

    static let retryAfter = Endpoint.Header(
        name: "Retry-After", description: "Seconds to wait before trying again (with TOO_MANY_STREAMS)", schema: .int32(0...3600))
}

/// Error responses many operations share.
enum APIResponses {
    static let unauthorized = Endpoint.Response.error(
        401, ["UNAUTHORIZED"], "UNAUTHORIZED: API_TOKENS is set and the request has no valid `Authorization: Bearer <token>`.",
        headers: [
            Endpoint.Header(name: "WWW-Authenticate", description: "The scheme to use", schema: .constant("Bearer"), required: true)
        ],
        componentName: "Unauthorized")

    static let invalidParameter = Endpoint.Response.error(
        400, ["INVALID_PARAMETER"], "INVALID_PARAMETER: a path or query parameter cannot be used (or is unknown); the message names it.",
        componentName: "InvalidParameter")

    static let invalidJSON = Endpoint.Response.error(
        400, ["INVALID_JSON"], "INVALID_JSON: the body is empty, not JSON, or not a JSON object.", componentName: "InvalidJSON")

    static let payloadTooLarge = Endpoint.Response.error(
        413, ["PAYLOAD_TOO_LARGE"], "PAYLOAD_TOO_LARGE: the body is larger than 1 MiB.", componentName: "PayloadTooLarge")

    static let invalidField = Endpoint.Response.error(
        422, ["INVALID_FIELD"], "INVALID_FIELD: a field of the body breaks its schema, or is unknown; the message names it.",
        componentName: "InvalidField")

    static let notFound = Endpoint.Response.error(404, ["NOT_FOUND"], "NOT_FOUND: no such resource.", componentName: "NotFound")

    static let databaseUnavailable = Endpoint.Response.error(
        503, ["DATABASE_UNAVAILABLE"], "DATABASE_UNAVAILABLE: PostgreSQL did not answer within DB_TIMEOUT (2 s); try again shortly.",
        componentName: "DatabaseUnavailable")

    static let internalError = Endpoint.Response.error(
        500, ["INTERNAL"], "INTERNAL: a bug of ours, logged with the request id.", componentName: "Internal")
}
