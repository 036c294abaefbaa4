import HTTPTypes

/// One operation of the API (an OpenAPI Operation Object): its route, what it accepts and what it answers. A route
/// is registered only with its endpoint (``APIRoutes/add(_:use:)``), the validator checks requests against it, and
/// the served document is written from the registered endpoints.
struct Endpoint: Sendable {
    let method: HTTPRequest.Method
    /// The path template, `/jobs/{id}`; Hummingbird routes the same pattern.
    let path: String
    /// The `operationId`.
    let id: String
    let tag: String
    let summary: String
    var description: String?
    var parameters: [Parameter] = []
    var body: RequestBody?
    var responses: [Response]
    /// Served without a token (`security: []`): /health and /ready.
    var open = false

    init(
        _ method: HTTPRequest.Method, _ path: String, id: String, tag: String, summary: String, description: String? = nil,
        parameters: [Parameter] = [], body: RequestBody? = nil, responses: [Response], open: Bool = false
    ) {
        self.method = method
        self.path = path
        self.id = id
        self.tag = tag
        self.summary = summary
        self.description = description
        self.parameters = parameters
        self.body = body
        self.responses = responses
        self.open = open
    }
}

extension Endpoint {
    /// Every response of the operation, by status: its own, and those the route table adds to every operation of
    /// its kind: 401 unless open, 400 `INVALID_PARAMETER` with path or query parameters, and with a body 400
    /// `INVALID_JSON`, 413 `PAYLOAD_TOO_LARGE` and 422 `INVALID_FIELD` (those of ``RequestValidator``).
    var allResponses: [Response] {
        var derived: [Response] = []
        if !self.open { derived.append(APIResponses.unauthorized) }
        if self.parameters.contains(where: { $0.location != .header }) { derived.append(APIResponses.invalidParameter) }
        if self.body != nil {
            derived += [APIResponses.invalidJSON, APIResponses.payloadTooLarge, APIResponses.invalidField]
        }
        var byStatus: [Int: Response] = [:]
        for response in derived + self.responses {
            byStatus[response.status] = byStatus[response.status].map { $0.merged(with: response) } ?? response
        }
        return byStatus.keys.sorted().map { byStatus[$0]! }
    }

    /// A path, query or header parameter.
    struct Parameter: Sendable {
        enum Location: String, Sendable {
            case path, query, header
        }

        let name: String
        let location: Location
        let schema: Schema
        var required: Bool
        var description: String?
        /// What a valid value is, for the error message when it is not ("a job id is a positive integer"); when nil the
        /// message is made from the schema.
        var expected: String?
        /// The name under `#/components/parameters`, for parameters many operations share.
        var componentName: String?

        init(
            _ name: String, in location: Location, schema: Schema, required: Bool = false, description: String? = nil,
            expected: String? = nil, componentName: String? = nil
        ) {
            self.name = name
            self.location = location
            self.schema = schema
            self.required = required || location == .path
            self.description = description
            self.expected = expected
            self.componentName = componentName
        }
    }

    /// A JSON request body.
    struct RequestBody: Sendable {
        /// What ``RequestValidator`` checks of the body.
        enum Checks: Sendable {
            /// Every rule of the schema, as `422 INVALID_FIELD` naming the field.
            case schema
            /// Only that it is an object of the schema's fields (others are `422 INVALID_FIELD`); the handler checks the
            /// fields' values itself. For the settlement, whose body is a job's arguments: they go through
            /// ``ArgumentCheck`` as they do in POST /jobs, so both routes answer the same mistake with the same error.
            case fieldNames
        }

        let schema: Schema
        var description: String?
        var checks = Checks.schema
    }

    /// A response of an operation: its status, body and headers.
    struct Response: Sendable {
        let status: Int
        let description: String
        var content: [MediaType] = []
        var headers: [Header] = []
        /// The name under `#/components/responses`, for responses many operations share.
        var componentName: String?
        /// The `error` codes of an error response (`{"error": CODE, "message": text}`).
        var errorCodes: [String] = []

        /// A JSON response of `schema`.
        static func json(_ status: Int, _ description: String, _ schema: Schema, headers: [Header] = []) -> Response {
            Response(status: status, description: description, content: [MediaType(type: "application/json", schema: schema)], headers: headers)
        }

        /// An error response: `{"error": one of codes, "message": text}`.
        static func error(
            _ status: Int, _ codes: [String], _ description: String, headers: [Header] = [], componentName: String? = nil
        ) -> Response {
            Response(
                status: status, description: description, content: [MediaType(type: "application/json", schema: APISchemas.error(codes))],
                headers: headers, componentName: componentName, errorCodes: codes)
        }

        /// Two error responses of one status as one: their codes, descriptions and headers together.
        func merged(with other: Response) -> Response {
            var headers = self.headers
            for header in other.headers where !headers.contains(where: { $0.name == header.name }) { headers.append(header) }
            return .error(self.status, self.errorCodes + other.errorCodes.filter { !self.errorCodes.contains($0) },
                self.description + " " + other.description, headers: headers)
        }
    }

    /// A body of a response in one media type.
    struct MediaType: Sendable {
        let type: String
        let schema: Schema
        /// Each item of a stream (an event of `text/event-stream`), written as `x-itemSchema`: OpenAPI 3.1 has no word
        /// for it; 3.2 names it `itemSchema`, with the same meaning.
        var itemSchema: Schema?
    }

    /// A response header.
    struct Header: Sendable {
        let name: String
        let description: String
        let schema: Schema
        var required = false
        /// The name under `#/components/headers`.
        var componentName: String?
    }
}
