import Skipper

/// The schemas of the API's resources and request bodies, as the handlers write and read them (JSONText.swift renders
/// the resources by hand; these say what that text is).
enum APISchemas {
    /// `{"error": CODE, "message": text}` with the codes a response can carry.
    static func error(_ codes: [String]) -> Schema {
        .object(
            [
                Property("error", .oneOf(codes), required: true),
                Property("message", .string(description: "What is wrong, naming the field or parameter first (`kind: is required`)"), required: true),
            ], closed: false)
    }

    static let status = Schema.oneOf(JobStatus.allCases.map(\.rawValue), name: "Status")

    /// A kind or queue name as stored: 1 to 128 characters (PostgreSQL's CHECK), no control characters.
    static let name = Schema.string(minLength: 1, maxLength: 128, printable: true)

    static let newJob = Schema.object(
        [
            Property("kind", name.described("The job's kind; some runner must have registered it").withExamples("noop"), required: true),
            Property(
                "args",
                Schema(.anyObject(noNUL: true), description: "The kind's arguments; checked by the kind's handler when this build has it (422 INVALID_ARGS). No string or key in it may hold U+0000.")
                    .orNull.withDefault(.object([:])).withExamples(.object([:]))),
            Property("queue", name.described("The named queue; runners choose which queues they serve").orNull.withDefault("default")),
            Property("priority", Schema.int32(Int64(Int16.min)...Int64(Int16.max), description: "Lower runs first").orNull.withDefault(0)),
            Property("run_at", Schema.string(maxLength: 64, format: "date-time", printable: true, description: "Not run before this time (from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z)").orNull),
            Property("max_attempts", Schema.int32(1...1000, description: "Attempts before the job is FAILED").orNull.withDefault(25)),
            Property(
                "unique_key",
                Schema.string(minLength: 1, maxLength: 256, printable: true, description: "At most one QUEUED job per key: submitting again returns that job (200)").orNull),
            Property(
                "timeout",
                Schema.string(
                    minLength: 2, maxLength: 32, printable: true,
                    description: "How long one attempt may run (500ms, 30s, 5m, 2h; 1 ms to 24 days): at the deadline the attempt fails with `timed out after …` and is retried like any failure. Default: the kind's own limit, if any"
                ).orNull.withExamples("30s")),
        ], name: "NewJob")

    static let job = Schema.object(
        [
            Property("job_id", .int64(1...Int64.max), required: true),
            Property("kind", name, required: true),
            Property("queue", name, required: true),
            Property("status", status, required: true),
            Property("progress", Schema.number.described("Percent done (0 to 100), from processed and total"), required: true),
            Property("processed", .int64(0...Int64.max), required: true),
            Property("total", Schema.int64(0...Int64.max).orNull, required: true),
            Property("attempt", .int32(0...Int64(Int32.max)), required: true),
            Property("max_attempts", .int32(1...Int64(Int32.max)), required: true),
            Property("priority", .int32(Int64(Int16.min)...Int64(Int16.max)), required: true),
            Property("args", Schema(.anyObject(noNUL: false)), required: true),
            Property("unique_key", Schema.string().orNull, required: true),
            Property("run_at", .dateTime, required: true),
            Property("created_at", .dateTime, required: true),
            Property("started_at", Schema.dateTime.orNull, required: true),
            Property("finished_at", Schema.dateTime.orNull, required: true),
            Property("cancel_requested_at", Schema.dateTime.orNull, required: true),
            Property("timeout_ms", Schema.int32(1...Int64(Int32.max), description: "The job's own time limit per attempt; null: its kind's, if any").orNull),
            Property("snoozed", Schema.int32(0...Int64(Int32.max), description: "How often its handler asked to run again later (no attempt spent)")),
            Property("runner_id", Schema.string(description: "The runner that holds it (RUNNING) or last held it").orNull),
            Property(
                "errors",
                .array(
                    .object(
                        [Property("attempt", .int32()), Property("at", .dateTime), Property("error", .string())], closed: false,
                        description: "A failed attempt"),
                    description: "One entry per failed attempt, oldest first"),
                required: true),
            Property("result", Schema(.any, description: "What the handler returned (any JSON), or null"), required: true),
            Property("meta", Schema(.anyObject(noNUL: false), description: "request_id, traceparent (and tracestate) of the submitting request, and other submitter data"), required: true),
            Property("download_url", Schema.string(description: "Where the job's file downloads from; null when it has none").orNull, required: true),
        ], closed: false, name: "Job")

    static let jobPage = Schema.object(
        [
            Property("jobs", .array(job), required: true),
            Property(
                "next", Schema.string(description: "Pass as `after` for the next page; null on the last page").orNull, required: true),
        ], closed: false, name: "JobPage")

    /// An event of GET /jobs/{id}/events: `event: job` with the job as JSON in `data`.
    static let jobEvent = Schema.object(
        [Property("event", .constant("job"), required: true), Property("data", .json(job), required: true)], closed: false,
        name: "JobEvent", description: "`event: job`, whose `data` is the job resource as JSON: sent at once, then on each change of status or progress")

    /// The last event of GET /jobs/{id}/events.
    static let endEvent = Schema.object(
        [Property("event", .constant("end"), required: true), Property("data", .json(.object([])), required: true)], closed: false,
        name: "EndEvent", description: "`event: end` with `data: {}`: the job has finished (its last `job` event came before), and the stream closes")

    /// One event of GET /jobs/{id}/events, as `event:` and `data:` lines.
    static let event = Schema(
        .oneOf([jobEvent, endEvent]),
        description: "One event of the stream: its `event` and `data` fields (events are separated by a blank line; lines starting with `:` are comments, such as `: keep-alive`)")

    static let settlementRequest = Schema.object(
        [
            Property("from", Schema.string(format: "date").withExamples("2025-01-01"), required: true),
            Property("to", Schema.string(format: "date", description: "Not before from, and at most 366 days after it").withExamples("2025-01-31"), required: true),
            Property("batch_size", Schema.int32(100...1_000_000, description: "Transactions per slice; default the runner's BATCH_SIZE").orNull),
            Property("parallelism", Schema.int32(1...16, description: "Slices aggregated at once").orNull.withDefault(2)),
        ], name: "SettlementRequest")

    static let settlementQueued = Schema.object(
        [Property("job_id", .int64(1...Int64.max), required: true), Property("status", .constant("QUEUED"), required: true)],
        closed: false, name: "SettlementQueued")

    static let newOrder = Schema.object(
        [
            Property("product_id", .int64(1...Int64.max), required: true),
            Property("quantity", .int32(1...1_000_000), required: true),
            Property("buyer_id", .string(minLength: 1, maxLength: 128, printable: true), required: true),
        ], name: "NewOrder")

    static let order = Schema.object(
        [
            Property("order_id", .string(format: "uuid"), required: true),
            Property("product_id", .int64(1...Int64.max), required: true),
            Property("buyer_id", .string(), required: true),
            Property("quantity", .int32(1...Int64(Int32.max)), required: true),
            Property("total_amount_cents", .int64(0...Int64.max), required: true),
            Property("status", .oneOf(["PENDING", "PAID"]), required: true),
            Property("created_at", .dateTime, required: true),
            Property("paid_at", Schema.dateTime.orNull, required: true),
        ], closed: false, name: "Order")

    static let categorySales = Schema.object(
        [
            Property("revenue_cents", .int64(0...Int64.max), required: true),
            Property("orders", .int64(0...Int64.max), required: true),
            Property("quantity", .int64(0...Int64.max), required: true),
        ], closed: false, name: "CategorySales")

    static let salesReport = Schema.object(
        [
            Property("total_revenue_cents", .int64(0...Int64.max), required: true),
            Property("paid_orders", .int64(0...Int64.max), required: true),
            Property("products_sold", .int64(0...Int64.max), required: true),
            Property("unique_customers", .int64(0...Int64.max), required: true),
            Property("by_category", Schema(.dictionary(categorySales), description: "Per product category"), required: true),
            Property("updated_at", Schema.dateTime.described("When the last refresh wrote it; null before any").orNull, required: true),
        ], closed: false, name: "SalesReport")

    static let health = Schema.object([Property("status", .constant("ok"), required: true)], closed: false, name: "Health")

    static let readiness = Schema.object(
        [Property("status", .constant("ready"), required: true), Property("schema_version", .int64(0...Int64.max), required: true)],
        closed: false, name: "Readiness")
}

/// Queues and kinds: pause flags and limits.
extension APISchemas {
    static let rate = Schema.object(
        [
            Property("limit", Schema.int32(1...1_000_000, description: "Starts allowed per period"), required: true),
            Property(
                "period",
                Schema.string(minLength: 2, maxLength: 32, printable: true, description: "The sliding window: 30s, 1m, 1h or 1d, from 1 s to 7 days")
                    .withExamples("1m"),
                required: true),
        ], description: "At most `limit` starts in any window of `period`, across all runners")

    static let limits = Schema.object(
        [
            Property("concurrency", Schema.int32(1...Int64(Int32.max)).orNull, required: true),
            Property("partition_by", Schema.string().orNull, required: true),
            Property(
                "rate",
                Schema.object(
                    [
                        Property("limit", .int32(1...Int64(Int32.max)), required: true),
                        Property("period", Schema.string(description: "Whole seconds (60s), or milliseconds (1500ms)"), required: true),
                    ], closed: false
                ).orNull,
                required: true),
        ], closed: false, name: "Limits")

    static let limitsChange = Schema.object(
        [
            Property("concurrency", Schema.int32(1...1_000_000, description: "At most this many RUNNING jobs (per partition when partition_by is set); null clears it").orNull),
            Property(
                "partition_by",
                Schema.string(minLength: 1, maxLength: 600, printable: true, description: "An argument path, `args.merchant_id`: concurrency counts per value of that argument; null clears it")
                    .orNull.withExamples("args.merchant_id")),
            Property("rate", rate.described("At most `limit` starts in any window of `period`; null clears it").orNull),
        ], name: "LimitsChange")

    static let queue = Schema.object(
        [
            Property("queue", name, required: true),
            Property("paused", Schema(.boolean), required: true),
            Property(
                "counts",
                Schema.object(JobStatus.allCases.map { Property($0.rawValue, .int64(0...Int64.max), required: true) }, closed: false,
                              description: "Jobs per status (finished ones until retention prunes them)"),
                required: true),
            Property("oldest_queued_seconds", Schema.number.described("Age of the oldest QUEUED job; null when none waits").orNull, required: true),
            Property("limits", limits, required: true),
            Property("runners", Schema.int64(0...Int64.max, description: "Live runners serving the queue"), required: true),
            Property("updated_at", Schema.dateTime.described("When its pause flag or limits last changed; null if never").orNull, required: true),
        ], closed: false, name: "Queue")

    static let queueList = Schema.object([Property("queues", .array(queue), required: true)], closed: false, name: "QueueList")

    static let kind = Schema.object(
        [
            Property("kind", name, required: true),
            Property("limits", limits, required: true),
            Property("first_seen_at", .dateTime, required: true),
            Property("last_seen_at", .dateTime, required: true),
        ], closed: false, name: "Kind")

    static let kindList = Schema.object([Property("kinds", .array(kind), required: true)], closed: false, name: "KindList")
}

/// Periodic jobs.
extension APISchemas {
    static let newSchedule = Schema.object(
        [
            Property(
                "name",
                Schema.string(minLength: 1, maxLength: 128, printable: true, description: "Unique: a letter or digit, then letters, digits, `.`, `_`, `:` or `-`")
                    .withExamples("nightly-settlement"),
                required: true),
            Property(
                "cron",
                Schema.string(minLength: 1, maxLength: 200, printable: true, description: "5-field cron (minute hour day-of-month month day-of-week), `@every 30s`, `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`")
                    .withExamples("0 2 * * *"),
                required: true),
            Property("kind", name.described("The jobs' kind; some runner must have registered it").withExamples("noop"), required: true),
            Property(
                "args",
                Schema(.anyObject(noNUL: true), description: "The jobs' arguments, checked by the kind's handler when this build has it")
                    .orNull.withDefault(.object([:]))),
            Property("queue", name.described("The jobs' queue").orNull.withDefault("default")),
            Property("timezone", Schema.string(minLength: 1, maxLength: 64, printable: true, description: "IANA time zone the cron is read in").orNull.withDefault("UTC")),
            Property("priority", Schema.int32(Int64(Int16.min)...Int64(Int16.max)).orNull.withDefault(0)),
            Property("max_attempts", Schema.int32(1...1000).orNull.withDefault(25)),
            Property("timeout", Schema.string(minLength: 2, maxLength: 32, printable: true, description: "Each job's time limit per attempt (30s, 5m)").orNull),
            Property("catch_up", Schema.oneOf(["latest", "none"], description: "Ticks missed while no runner ran: one job for the latest, or none").orNull.withDefault("latest")),
        ], name: "NewSchedule")

    static let schedule = Schema.object(
        [
            Property("name", .string(), required: true),
            Property("cron", .string(), required: true),
            Property("timezone", .string(), required: true),
            Property("kind", .string(), required: true),
            Property("args", Schema(.anyObject(noNUL: false)), required: true),
            Property("queue", .string(), required: true),
            Property("priority", .int32(Int64(Int16.min)...Int64(Int16.max)), required: true),
            Property("max_attempts", .int32(1...Int64(Int32.max)), required: true),
            Property("timeout_ms", Schema.int32(1...Int64(Int32.max)).orNull, required: true),
            Property("catch_up", .oneOf(["latest", "none"]), required: true),
            Property("paused", Schema(.boolean), required: true),
            Property("source", Schema.oneOf(["api", "code"], description: "code: declared by a runner's program, which writes it again when it starts"), required: true),
            Property("next_run_at", Schema.dateTime.described("The next tick; null while paused-then-resumed or unparseable").orNull, required: true),
            Property("last_run_at", Schema.dateTime.described("The last tick a job was made for").orNull, required: true),
            Property("last_job_id", Schema.int64(1...Int64.max).orNull, required: true),
            Property("created_at", .dateTime, required: true),
            Property("updated_at", .dateTime, required: true),
        ], closed: false, name: "Schedule")

    static let scheduleList = Schema.object([Property("schedules", .array(schedule), required: true)], closed: false, name: "ScheduleList")

    static let runner = Schema.object(
        [
            Property("runner_id", .string(), required: true),
            Property("host", .string(), required: true),
            Property("pid", .int64(), required: true),
            Property("queues", .array(.string()), required: true),
            Property("kinds", .array(.string()), required: true),
            Property("workers", Schema.int64(description: "Jobs it runs at once (WORKERS)"), required: true),
            Property("running", Schema.int64(0...Int64.max, description: "Its RUNNING jobs"), required: true),
            Property("started_at", .dateTime, required: true),
            Property("heartbeat_at", .dateTime, required: true),
            Property("heartbeat_age_seconds", .number, required: true),
            Property("lease_seconds", Schema.number.described("RESCUE_AFTER: its jobs are rescued once its heartbeat is this old"), required: true),
            Property("stale", Schema(.boolean, description: "Its heartbeat is older than half its lease"), required: true),
        ], closed: false, name: "Runner")

    static let runnerList = Schema.object([Property("runners", .array(runner), required: true)], closed: false, name: "RunnerList")

    static let statsMinute = Schema.object(
        [
            Property("minute", .dateTime, required: true),
            Property("completed", .int64(0...Int64.max), required: true),
            Property("failed", .int64(0...Int64.max), required: true),
            Property("cancelled", .int64(0...Int64.max), required: true),
            Property("latency_p50_ms", Schema.number.described("Median wait from due (run_at) to start, of the jobs that finished in the minute").orNull, required: true),
            Property("latency_p99_ms", Schema.number.described("99th percentile of the same").orNull, required: true),
        ], closed: false, name: "StatsMinute")

    static let stats = Schema.object(
        [
            Property("window", Schema.oneOf(["1h", "24h"]), required: true),
            Property("queue", name.orNull, required: true),
            Property("minutes", .array(statsMinute), required: true),
        ], closed: false, name: "Stats")

    static let bulkFilter = Schema.object(
        [
            Property("status", Schema.oneOf(JobStatus.allCases.map(\.rawValue), description: "Only jobs in this status").orNull),
            Property("kind", name.orNull),
            Property("queue", name.orNull),
            Property("args", Schema(.anyObject(noNUL: true), description: "Only jobs whose arguments contain this object").orNull),
            Property("limit", Schema.int32(1...1000, description: "At most this many jobs per call").orNull.withDefault(100)),
            Property("after", Schema.int64(1...Int64.max, description: "The `next` of the previous call").orNull),
        ], name: "BulkFilter", description: "Which jobs: every field left out selects any")

    static let bulkOutcome = Schema.object(
        [
            Property("count", Schema.int64(0...Int64.max, description: "How many jobs this call changed"), required: true),
            Property("job_ids", .array(.int64()), required: true),
            Property("next", Schema.int64(description: "Pass as `after` to go on; null when every selected job was looked at. A page stops early (fewer than `limit` looked at) at half of the API's DB_TIMEOUT").orNull, required: true),
        ], closed: false, name: "BulkOutcome")
}
