/// `/jobs`: what JobsController serves.
extension Endpoint {
    static let submitJob = Endpoint(
        .post, "/jobs", id: "submitJob", tag: "jobs", summary: "Submit a job",
        description: """
            The answer comes once the job has committed. Submissions arriving together share one INSERT and one commit. \
            A 503 after the database deadline means the job was not stored, unless PostgreSQL was slow rather than \
            unreachable; submit with a unique_key when a retry must not duplicate the job. The job's `meta` keeps the \
            request's id and its trace context (`traceparent`, sent or started here), which the runner continues.
            """,
        parameters: [APIParameters.traceparent, APIParameters.tracestate],
        body: RequestBody(schema: APISchemas.newJob),
        responses: [
            .json(200, "A QUEUED job already holds the unique_key: that job, as it is", APISchemas.job, headers: [APIHeaders.location]),
            .json(202, "Queued: the new job", APISchemas.job, headers: [APIHeaders.location]),
            .error(
                422, ["UNKNOWN_KIND", "INVALID_ARGS"],
                "UNKNOWN_KIND: no runner has registered the kind. INVALID_ARGS: the arguments fail the kind's own check; the message names the field (`args.ms: ...`)."
            ),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let listJobs = Endpoint(
        .get, "/jobs", id: "listJobs", tag: "jobs", summary: "List jobs, newest first, one page at a time",
        description: "Filters combine; a parameter not listed here is refused (400). A page also stops early at a byte budget, with its `next` cursor.",
        parameters: [
            Parameter("status", in: .query, schema: APISchemas.status, description: "Only jobs in this status"),
            Parameter("kind", in: .query, schema: APISchemas.name, description: "Only jobs of this kind"),
            Parameter("queue", in: .query, schema: APISchemas.name, description: "Only jobs of this queue"),
            Parameter(
                "args", in: .query, schema: Schema.string(minLength: 2, maxLength: 4096, printable: true),
                description: "A JSON object: only jobs whose arguments contain it (`{\"merchant_id\":42}`); read newest first, as the other filters, without an index of its own",
                expected: "must be a JSON object such as {\"merchant_id\":42}"),
            Parameter("limit", in: .query, schema: Schema.int32(1...1000).withDefault(50), description: "At most this many jobs"),
            Parameter(
                "after", in: .query, schema: .int64(1...Int64.max), description: "The `next` cursor of the previous page",
                expected: "must be the `next` cursor of a previous page"),
        ],
        responses: [
            .json(200, "A page of jobs", APISchemas.jobPage),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let getJob = Endpoint(
        .get, "/jobs/{id}", id: "getJob", tag: "jobs", summary: "Read a job",
        parameters: [APIParameters.jobID],
        responses: [
            .json(200, "The job", APISchemas.job),
            APIResponses.notFound, APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let cancelJob = Endpoint(
        .post, "/jobs/{id}/cancel", id: "cancelJob", tag: "jobs",
        summary: "Cancel a job: a QUEUED job becomes CANCELLED at once; a RUNNING job's runner is told to stop it",
        parameters: [APIParameters.jobID],
        responses: [
            .json(202, "Cancelled, or cancel requested (cancel_requested_at is set): the job", APISchemas.job),
            APIResponses.notFound,
            .error(409, ["JOB_FINISHED"], "JOB_FINISHED: the job has already finished."),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let retryJob = Endpoint(
        .post, "/jobs/{id}/retry", id: "retryJob", tag: "jobs", summary: "Queue a FAILED or CANCELLED job again with a fresh attempt budget",
        parameters: [APIParameters.jobID],
        responses: [
            .json(202, "Queued again: the job", APISchemas.job),
            APIResponses.notFound,
            .error(
                409, ["JOB_NOT_RETRYABLE", "UNIQUE_KEY_QUEUED"],
                "JOB_NOT_RETRYABLE: the job is neither FAILED nor CANCELLED. UNIQUE_KEY_QUEUED: another QUEUED job holds its unique_key."),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let followJob = Endpoint(
        .get, "/jobs/{id}/events", id: "followJob", tag: "jobs", summary: "Follow a job as server-sent events until it finishes",
        description: """
            A text/event-stream of two kinds of event (JobEvent and EndEvent; the media type's schema, and x-itemSchema as \
            OpenAPI 3.2 names it, describe each event, with the fields `event` and `data` of the stream): `event: job` whose data \
            is the job resource as JSON, sent at once and then on every change of status or progress (runners announce \
            progress at most every 500 ms per job; the stream also polls every second), and, once the job has finished, \
            `event: end` with `data: {}`, after which the stream closes. A comment line `: keep-alive` comes after 15 \
            quiet seconds. When the server shuts down, the stream closes without `end`: reconnect (to another instance) \
            to go on following. A reader that is slow gets the job as it is when it reads again, not a backlog. Each process \
            serves at most SSE_MAX_STREAMS streams; beyond that, 503 TOO_MANY_STREAMS with Retry-After.
            """,
        parameters: [APIParameters.jobID],
        responses: [
            Response(
                status: 200, description: "The job's events until it finishes",
                content: [
                    MediaType(type: "text/event-stream", schema: APISchemas.event, itemSchema: APISchemas.event)
                ]),
            APIResponses.notFound,
            .error(
                503, ["DATABASE_UNAVAILABLE", "TOO_MANY_STREAMS"],
                "DATABASE_UNAVAILABLE: PostgreSQL did not answer in time. TOO_MANY_STREAMS: this process serves SSE_MAX_STREAMS streams already; retry after Retry-After seconds, or poll GET /jobs/{id}.",
                headers: [APIHeaders.retryAfter]),
            APIResponses.internalError,
        ])
}
