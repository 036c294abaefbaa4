import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Shop
import Skipper
import Synchronization

/// `/jobs`: submit, read, list, cancel, retry and follow jobs. The API inserts and reads; it never runs a job.
struct JobsController: Sendable {
    let database: Database
    let events: EventHub
    /// The arguments of kinds this build knows are checked at submit time.
    let arguments: ArgumentCheck
    let logger: Logger
    let kinds = KnownKinds()

    static let submitFields: Set<String> = ["kind", "args", "queue", "priority", "run_at", "max_attempts", "unique_key"]
    static let listParameters: Set<String> = ["status", "kind", "queue", "limit", "after"]

    func addRoutes(to router: Router<APIRequestContext>) {
        router.post("/jobs", use: self.submit)
        router.get("/jobs", use: self.list)
        router.get("/jobs/:id", use: self.get)
        router.post("/jobs/:id/cancel", use: self.cancel)
        router.post("/jobs/:id/retry", use: self.retry)
        router.get("/jobs/:id/events", use: self.follow)
    }

    // MARK: - Submit

    @Sendable func submit(_ request: Request, context: APIRequestContext) async throws -> Response {
        let body = try await JSONObject.parse(request, context: context)
        try body.rejectUnknown(allowed: Self.submitFields)
        let kind = try body.string("kind", required: true, maxLength: 128)!
        let args = try body.objectJSON("args") ?? "{}"
        var options = JobOptions()
        if let queue = try body.string("queue", maxLength: 128) { options.queue = queue }
        if let priority = try body.integer("priority", in: Int64(Int16.min)...Int64(Int16.max)) { options.priority = Int16(priority) }
        options.runAt = try body.timestamp("run_at")
        if let attempts = try body.integer("max_attempts", in: 1...1000) { options.maxAttempts = Int32(attempts) }
        options.uniqueKey = try body.string("unique_key", maxLength: 256)
        options.meta = ["request_id": context.requestID]
        try self.arguments.check(kind: kind, args: args)
        let submitted = options
        let kinds = self.kinds
        let (job, record) = try await self.database.run { database in
            guard try await kinds.contains(kind, store: database.store) else {
                let known = try await database.store.knownKinds()
                throw APIError(
                    status: .unprocessableContent, code: "UNKNOWN_KIND",
                    message: "no runner has registered kind '\(kind)'; known kinds: \(known.isEmpty ? "none yet" : known.joined(separator: ", "))")
            }
            return try await database.client.submit(kind: kind, argsJSON: args, options: submitted)
        }
        return jsonResponse(job.inserted ? .accepted : .ok, record.json, headers: [.location: "/jobs/\(job.id)"])
    }

    // MARK: - Read

    @Sendable func get(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try jobID(context)
        guard let job = try await self.database.run({ database in try await database.store.job(id: id) }) else { throw APIError.notFound("job \(id)") }
        return jsonResponse(.ok, job.json)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        if let unknown = query.map({ String($0.key) }).sorted().first(where: { !Self.listParameters.contains($0) }) {
            throw APIError.invalidParameter(unknown, "unknown parameter (expected: \(Self.listParameters.sorted().joined(separator: ", ")))")
        }
        var filter = JobFilter()
        if let status = query.get("status") {
            guard let parsed = JobStatus(rawValue: status.uppercased()) else {
                throw APIError.invalidParameter(
                    "status", "must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", ")), not '\(status)'")
            }
            filter.status = parsed
        }
        filter.kind = try Self.nonEmpty(query.get("kind"), name: "kind")
        filter.queue = try Self.nonEmpty(query.get("queue"), name: "queue")
        var limit = 50
        if let text = query.get("limit") {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw APIError.invalidParameter("limit", "must be an integer from 1 to 1000, not '\(text)'")
            }
            limit = value
        }
        var after: Int64?
        if let text = query.get("after") {
            guard let value = Int64(text), value > 0 else {
                throw APIError.invalidParameter("after", "must be the `next` cursor of a previous page, not '\(text)'")
            }
            after = value
        }
        let (chosen, pageSize, cursor) = (filter, limit, after)
        let page = try await self.database.run { database in try await database.store.list(chosen, limit: pageSize, after: cursor) }
        let next = page.next.map { "\"\($0)\"" } ?? "null"
        return jsonResponse(.ok, #"{"jobs":["# + page.jobs.map(\.json).joined(separator: ",") + #"],"next":"# + next + "}")
    }

    private static func nonEmpty(_ value: String?, name: String) throws -> String? {
        guard let value else { return nil }
        guard !value.isEmpty, value.unicodeScalars.count <= 128 else { throw APIError.invalidParameter(name, "must be 1 to 128 characters") }
        // PostgreSQL's text cannot hold U+0000; no kind or queue holds a control character.
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.invalidParameter(name, "must not contain control characters")
        }
        return value
    }

    // MARK: - Cancel and retry

    @Sendable func cancel(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try jobID(context)
        let (outcome, job) = try await self.database.run { database in
            let outcome = try await database.client.cancel(id: id)
            return (outcome, try await database.store.job(id: id))
        }
        switch outcome {
        case .cancelled, .requested:
            self.events.poke(id)
            guard let job else { throw APIError.notFound("job \(id)") }
            return jsonResponse(.accepted, job.json)
        case .alreadyFinished(let status):
            throw APIError(status: .conflict, code: "JOB_FINISHED", message: "job \(id) has already finished: \(status.rawValue)")
        case .notFound:
            throw APIError.notFound("job \(id)")
        }
    }

    @Sendable func retry(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try jobID(context)
        switch try await self.database.run({ database in try await database.client.retry(id: id) }) {
        case .queued(let job):
            self.events.poke(id)
            return jsonResponse(.accepted, job.json)
        case .notRetryable(let status):
            throw APIError(
                status: .conflict, code: "JOB_NOT_RETRYABLE",
                message: "job \(id) is \(status.rawValue); only FAILED or CANCELLED jobs can be retried")
        case .uniqueKeyTaken(let key):
            throw APIError(
                status: .conflict, code: "UNIQUE_KEY_QUEUED", message: "another QUEUED job holds unique_key '\(key)'")
        case .notFound:
            throw APIError.notFound("job \(id)")
        }
    }

    // MARK: - Follow (Server-Sent Events)

    /// `text/event-stream` of the job: one `job` event now, one per change of status or progress (announced on
    /// `skipper_events`, and polled every second as a floor), and a last one when it finishes; then the stream ends.
    @Sendable func follow(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try jobID(context)
        let database = self.database
        guard let first = try await self.database.run({ database in try await database.store.job(id: id) }) else {
            throw APIError.notFound("job \(id)")
        }
        // Each stream holds a slot until it ends; beyond the cap, come back later (SSE_MAX_STREAMS).
        guard let (token, signal) = self.events.follow(id) else {
            throw APIError(
                status: .serviceUnavailable, code: "TOO_MANY_STREAMS",
                message: "this server follows \(self.events.maxStreams) jobs at once already; retry shortly or poll GET /jobs/\(id)",
                headers: [.retryAfter: "5"])
        }
        let events = self.events
        let logger = self.logger
        let body = ResponseBody { writer in
            defer { events.unfollow(id, token: token) }
            var last = first
            // A write waits for the client to take the previous one (backpressure), so a slow reader costs one event
            // in flight, and it gets the job's state as it is when it reads again, not a backlog of old states.
            try await writer.write(Self.event(last.json))
            var quiet = ContinuousClock.now
            while !last.status.isFinished, !Task.isCancelled {
                await signal.wait(timeout: .seconds(1))
                let job: JobRecord?
                do {
                    let known = last
                    job = try await database.run { database in try await database.store.refresh(known) }
                } catch {
                    logger.debug("event stream could not read the job; trying again", metadata: ["job.id": "\(id)"])
                    continue
                }
                guard let job else { break }  // pruned meanwhile
                if job != last {
                    last = job
                    try await writer.write(Self.event(job.json))
                    quiet = .now
                } else if ContinuousClock.now - quiet > .seconds(15) {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    quiet = .now
                }
            }
            try await writer.write(ByteBuffer(string: "event: end\ndata: {}\n\n"))
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }

    private static func event(_ json: String) -> ByteBuffer {
        ByteBuffer(string: "event: job\ndata: \(json)\n\n")
    }
}

/// The `:id` path parameter as a job id: 400 when it is not a positive integer.
func jobID(_ context: APIRequestContext) throws -> Int64 {
    let text = context.parameters.get("id") ?? ""
    guard let id = Int64(text), id > 0 else {
        throw APIError.invalidParameter("id", "a job id is a positive integer, not '\(text)'")
    }
    return id
}

/// Kinds some runner has registered. A kind never leaves `skipper.kinds`, so a kind seen once is cached for the
/// life of the process and a submit of a known kind costs no query; an unknown one is looked up every time.
final class KnownKinds: Sendable {
    private let known = Mutex<Set<String>>([])

    func contains(_ kind: String, store: JobStore) async throws -> Bool {
        if self.known.withLock({ $0.contains(kind) }) { return true }
        guard try await store.isKnownKind(kind) else { return false }
        self.known.withLock { _ = $0.insert(kind) }
        return true
    }
}
