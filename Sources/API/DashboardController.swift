import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Skipper

/// The dashboard (`/ui`): its page and files, served open (the page asks for a token when the API wants one), and
/// what it reads beyond jobs, queues and schedules: runners, per-minute statistics, and cancel or retry of every job
/// a filter selects.
struct DashboardController: Sendable {
    let database: Database
    let events: EventHub
    /// Chart.js on this machine (`CHART_JS`).
    let chartJS: String
    let logger: Logger

    func addRoutes(to api: APIRoutes) {
        api.add(.listRunners, use: self.runners)
        api.add(.stats, use: self.stats)
        api.add(.cancelJobs, use: self.cancelJobs)
        api.add(.retryJobs, use: self.retryJobs)
        api.add(.dashboard, use: self.page)
        api.add(.dashboardFile, use: self.file)
        api.add(.dashboardVendorFile, use: self.vendorFile)
    }

    @Sendable func runners(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let runners = try await self.database.run { database in try await database.store.runners() }
        return jsonResponse(.ok, #"{"runners":["# + runners.joined(separator: ",") + "]}")
    }

    @Sendable func stats(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        // `window` has the schema's default when left out.
        let window = input.parameters.string("window")!
        let queue = input.parameters.string("queue")
        let minutes = try await self.database.run { database in
            try await database.store.stats(window: window == "24h" ? .seconds(86_400) : .seconds(3_600), queue: queue)
        }
        return jsonResponse(
            .ok, #"{"window":"\#(window)","queue":\#(queue.map(JSONText.quote) ?? "null"),"minutes":["# + minutes.joined(separator: ",") + "]}")
    }

    @Sendable func cancelJobs(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        try await self.changeSelected(input, done: "jobs cancelled by filter") { store, filter, limit, after, budget in
            try await store.cancel(filter, limit: limit, after: after, within: budget)
        }
    }

    @Sendable func retryJobs(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        try await self.changeSelected(input, done: "jobs retried by filter") { store, filter, limit, after, budget in
            try await store.retry(filter, limit: limit, after: after, within: budget)
        }
    }

    /// Runs `change` on the page of jobs the body selects; their event streams are poked and the change is logged.
    /// The page stops at half of `DB_TIMEOUT` (each job is a transaction of its own), answering what it changed and
    /// where to go on: cut at the deadline instead, it answered 503 for a page it had half changed.
    private func changeSelected(
        _ input: Input, done: Logger.Message,
        _ change: @escaping @Sendable (JobStore, JobFilter, Int, Int64?, Duration) async throws -> BulkOutcome
    ) async throws -> Response {
        let (filter, limit, after) = Self.bulk(input)
        let budget = Duration.nanoseconds(self.database.deadline.nanoseconds / 2)
        let outcome = try await self.database.run { database in try await change(database.store, filter, limit, after, budget) }
        outcome.changed.forEach(self.events.poke)
        if !outcome.changed.isEmpty {
            self.logger.info(done, metadata: ["jobs": "\(outcome.changed.count)", "filter": "\(JSONValue.object(input.bodyObject).jsonText)"])
        }
        return jsonResponse(.ok, Self.json(outcome))
    }

    /// The body of POST /jobs/cancel and /jobs/retry (checked against ``APISchemas/bulkFilter``).
    static func bulk(_ input: Input) -> (JobFilter, Int, Int64?) {
        let body = input.body
        let filter = JobFilter(
            status: body.string("status").flatMap(JobStatus.init(rawValue:)), kind: body.string("kind"), queue: body.string("queue"),
            args: body.json("args"))
        // `limit` has the schema's default when left out.
        return (filter, Int(body.integer("limit")!), body.integer("after"))
    }

    static func json(_ outcome: BulkOutcome) -> String {
        #"{"count":\#(outcome.changed.count),"job_ids":[\#(outcome.changed.map(String.init).joined(separator: ","))],"next":\#(outcome.next.map(String.init) ?? "null")}"#
    }

    // MARK: - The page

    @Sendable func page(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        Self.serve(EmbeddedUI.files["index.html"] ?? "", type: "text/html; charset=utf-8")
    }

    @Sendable func file(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let name = input.parameters.string("file")!
        guard name != "index.html", let text = EmbeddedUI.files[name], let type = Self.contentType(name) else {
            throw APIError.notFound("dashboard file '\(name)'")
        }
        return Self.serve(text, type: type)
    }

    @Sendable func vendorFile(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let name = input.parameters.string("file")!
        guard name == "chart.min.js" else { throw APIError.notFound("dashboard file 'vendor/\(name)'") }
        guard let data = FileManager.default.contents(atPath: self.chartJS) else {
            throw APIError.notFound("Chart.js at \(self.chartJS) (install Debian's libjs-chart.js, or set CHART_JS)")
        }
        var response = Self.serve("", type: "text/javascript; charset=utf-8")
        response.body = .init(byteBuffer: ByteBuffer(bytes: data))
        return response
    }

    static func contentType(_ name: String) -> String? {
        if name.hasSuffix(".js") { return "text/javascript; charset=utf-8" }
        if name.hasSuffix(".css") { return "text/css; charset=utf-8" }
        return nil
    }

    static func serve(_ text: String, type: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "no-cache", HTTPField.Name("X-Content-Type-Options")!: "nosniff"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
