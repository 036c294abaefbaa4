import HTTPTypes
import Hummingbird
import Skipper

/// The trace a submitted job joins: W3C trace context (https://www.w3.org/TR/trace-context/) from the request's
/// `traceparent` and `tracestate` headers, kept in the job's `meta` for the runner to continue. A request without
/// a valid `traceparent` gets a new trace (sampled), so every job submitted here can be followed.
enum TraceContext {
    /// The meta of a job submitted by `request`: its request id and its trace context.
    static func jobMeta(_ request: Request, context: APIRequestContext) -> [String: String] {
        var meta = ["request_id": context.requestID]
        let headers = request.headers[values: .traceparent]
        // Two traceparent headers are no trace context at all (the specification's rule).
        if headers.count == 1, let parent = TraceParent(headers[0]) {
            meta[TraceParent.metaKey] = parent.description
            // Vendors' data, kept only when it parses: one that does not is not propagated (the specification's rule).
            let states = request.headers[values: .tracestate]
            if !states.isEmpty, let state = TraceParent.validState(states.joined(separator: ",")) {
                meta[TraceParent.stateMetaKey] = state
            }
        } else {
            meta[TraceParent.metaKey] = TraceParent.random().description
        }
        return meta
    }
}

extension HTTPField.Name {
    static let traceparent = HTTPField.Name("traceparent")!
    static let tracestate = HTTPField.Name("tracestate")!
}
