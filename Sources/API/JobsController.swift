import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
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

    func addRoutes(to api: APIRoutes) {
        api.add(.submitJob, use: self.submit)
        api.add(.listJobs, use: self.list)
        api.add(.getJob, use: self.get)
        api.add(.cancelJob, use: self.cancel)
        api.add(.retryJob, use: self.retry)
        api.add(.followJob, use: self.follow)
    }

    // MARK: - Submit

    /// The body passed ``APISchemas/newJob`` (fields left out hold the schema's defaults); what is left to check is
    /// the kind's own (its arguments, and that a runner registered it).
    @Sendable func submit(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let body = input.body
        let kind = body.string("kind")!  // required
        let args = body.json("args") ?? "{}"
        var options = JobOptions()
        if let queue = body.string("queue") { options.queue = queue }
        if let priority = body.integer("priority") { options.priority = Int16(priority) }
        options.runAt = body.date("run_at")
        if let attempts = body.integer("max_attempts") { options.maxAttempts = Int32(attempts) }
        options.uniqueKey = body.string("unique_key")
        if let timeout = body.string("timeout") {
            options.timeout = try APIError.duration(timeout, field: "timeout", in: .milliseconds(1) ... .milliseconds(Int64(Int32.max)))
        }
        options.meta = TraceContext.jobMeta(request, context: context)
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

    @Sendable func get(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let id = input.parameters.integer("id")!
        guard let job = try await self.database.run({ database in try await database.store.job(id: id) }) else { throw APIError.notFound("job \(id)") }
        return jsonResponse(.ok, job.json)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let query = input.parameters
        var filter = JobFilter()
        filter.status = query.string("status").flatMap(JobStatus.init(rawValue:))
        filter.kind = query.string("kind")
        filter.queue = query.string("queue")
        filter.args = try query.string("args").map(Self.argumentsFilter)
        // `limit` has the schema's default when left out.
        let (chosen, pageSize, cursor) = (filter, Int(query.integer("limit")!), query.integer("after"))
        let page = try await self.database.run { database in try await database.store.list(chosen, limit: pageSize, after: cursor) }
        let next = page.next.map { "\"\($0)\"" } ?? "null"
        return jsonResponse(.ok, #"{"jobs":["# + page.jobs.map(\.json).joined(separator: ",") + #"],"next":"# + next + "}")
    }

    /// The `args` query parameter as compact JSON text: a JSON object, no string or key holding U+0000 (which jsonb
    /// cannot hold). 400 otherwise.
    static func argumentsFilter(_ text: String) throws -> String {
        let refused = APIError.invalidParameter("args", "must be a JSON object such as {\"merchant_id\":42}")
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)), case .object = value else { throw refused }
        guard !value.containsNUL else { throw APIError.invalidParameter("args", "no string or key may hold U+0000") }
        return value.jsonText
    }

    // MARK: - Cancel and retry

    @Sendable func cancel(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let id = input.parameters.integer("id")!
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

    @Sendable func retry(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let id = input.parameters.integer("id")!
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
    @Sendable func follow(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let id = input.parameters.integer("id")!
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
            var pruned = false
            // A stream also ends when the server shuts down (without `end`: the job has not finished; the client
            // reconnects), or a follower of a job that never finishes would hold the server up forever.
            while !last.status.isFinished, !Task.isCancelled, !Task.isShuttingDownGracefully {
                await signal.wait(timeout: .seconds(1))
                let job: JobRecord?
                do {
                    let known = last
                    job = try await database.run { database in try await database.store.refresh(known) }
                } catch {
                    logger.debug("event stream could not read the job; trying again", metadata: ["job.id": "\(id)"])
                    continue
                }
                guard let job else {  // pruned meanwhile: nothing more will come
                    pruned = true
                    break
                }
                if job != last {
                    last = job
                    try await writer.write(Self.event(job.json))
                    quiet = .now
                } else if ContinuousClock.now - quiet > .seconds(3) {
                    // A gone client is noticed only by a write that fails: a comment every 3 s frees its slot (and
                    // ends its once-a-second reads) within seconds, where 15 s kept a burst of dropped streams
                    // holding every slot.
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    quiet = .now
                }
            }
            if last.status.isFinished || pruned { try await writer.write(ByteBuffer(string: "event: end\ndata: {}\n\n")) }
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
