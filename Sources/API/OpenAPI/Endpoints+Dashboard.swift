/// What DashboardController serves: the dashboard's page and what it reads beyond jobs and queues.
extension Endpoint {
    static let listRunners = Endpoint(
        .get, "/runners", id: "listRunners", tag: "operations",
        summary: "Every registered runner: host, pid, queues, kinds, workers, RUNNING jobs, heartbeat age; `stale` when its heartbeat is older than half its lease",
        description: "A runner whose heartbeat is older than its whole lease (`lease_seconds`, RESCUE_AFTER) has its jobs rescued and its row removed by the runners' maintenance.",
        responses: [.json(200, "The runners, by host and pid", APISchemas.runnerList), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let stats = Endpoint(
        .get, "/stats", id: "getStats", tag: "operations",
        summary: "Jobs finished per minute and their wait from due to start (p50, p99), for the last hour or day",
        description: """
            Read from skipper.stats_minutely, which the runners' maintenance rolls up from the job table every 10 s or so; \
            a minute appears once it ended 10 s ago. Minutes in which no job finished have no entry. The wait is of the \
            jobs that finished in that minute.
            """,
        parameters: [
            Parameter("window", in: .query, schema: Schema.oneOf(["1h", "24h"]).withDefault("1h"), description: "The last hour or day"),
            Parameter("queue", in: .query, schema: APISchemas.name, description: "One queue's figures (all queues together when left out)"),
        ],
        responses: [.json(200, "The minutes, oldest first", APISchemas.stats), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let cancelJobs = Endpoint(
        .post, "/jobs/cancel", id: "cancelJobs", tag: "jobs",
        summary: "Cancel every QUEUED and RUNNING job a filter selects, a page at a time",
        description: """
            As POST /jobs/{id}/cancel for each job the filter selects (newest first, at most `limit` per call; jobs already \
            asked to cancel are left out). Call again with `after` set to `next` until `next` is null.
            """,
        body: RequestBody(schema: APISchemas.bulkFilter),
        responses: [.json(200, "What was cancelled", APISchemas.bulkOutcome), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let retryJobs = Endpoint(
        .post, "/jobs/retry", id: "retryJobs", tag: "jobs",
        summary: "Queue again every FAILED and CANCELLED job a filter selects, a page at a time",
        description: """
            As POST /jobs/{id}/retry for each job the filter selects (newest first, at most `limit` per call); a job whose \
            unique key another QUEUED job holds stays as it is. Call again with `after` set to `next` until `next` is null.
            """,
        body: RequestBody(schema: APISchemas.bulkFilter),
        responses: [.json(200, "What was queued again", APISchemas.bulkOutcome), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let dashboard = Endpoint(
        .get, "/ui", id: "dashboard", tag: "dashboard",
        summary: "The dashboard: queues, charts, jobs, runners and schedules, in the browser",
        description: "The page itself needs no token; it asks for one when the API answers 401 and keeps it for the tab.",
        responses: [Response(status: 200, description: "The page", content: [MediaType(type: "text/html", schema: .string())])],
        open: true)

    static let dashboardFile = Endpoint(
        .get, "/ui/{file}", id: "dashboardFile", tag: "dashboard", summary: "The dashboard's script and style sheet",
        parameters: [Parameter("file", in: .path, schema: Schema.string(minLength: 1, maxLength: 64, printable: true), description: "app.js or app.css")],
        responses: [
            Response(
                status: 200, description: "The file",
                content: [MediaType(type: "text/javascript", schema: .string()), MediaType(type: "text/css", schema: .string())]),
            APIResponses.notFound,
        ],
        open: true)

    static let dashboardVendorFile = Endpoint(
        .get, "/ui/vendor/{file}", id: "dashboardVendorFile", tag: "dashboard",
        summary: "Chart.js, from the system's package (Debian's libjs-chart.js; CHART_JS names another path)",
        parameters: [Parameter("file", in: .path, schema: Schema.string(minLength: 1, maxLength: 64, printable: true), description: "chart.min.js")],
        responses: [
            Response(status: 200, description: "The file", content: [MediaType(type: "text/javascript", schema: .string())]),
            APIResponses.notFound,
        ],
        open: true)
}
