/// What QueuesController serves: queues and kinds, their pause flags and limits.
extension Endpoint {
    static let queueName = Parameter(
        "queue", in: .path, schema: APISchemas.name, description: "The queue's name", expected: "a queue name is 1 to 128 printable characters",
        componentName: "QueueName")
    static let kindName = Parameter(
        "kind", in: .path, schema: APISchemas.name, description: "The kind's name", expected: "a kind name is 1 to 128 printable characters",
        componentName: "KindName")

    static let listQueues = Endpoint(
        .get, "/queues", id: "listQueues", tag: "queues",
        summary: "Every queue: jobs per status, the oldest waiting job's age, the pause flag, limits, and how many live runners serve it",
        description: "A queue is listed when it has jobs or has been paused or limited (a row in skipper.queues).",
        responses: [.json(200, "The queues, by name", APISchemas.queueList), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let pauseQueue = Endpoint(
        .post, "/queues/{queue}/pause", id: "pauseQueue", tag: "queues",
        summary: "Pause a queue: runners claim nothing from it within a second; its running jobs finish",
        description: "Pausing a queue that no job names yet creates its row (queues are named by jobs, which may come later). Idempotent.",
        parameters: [queueName],
        responses: [.json(200, "The queue, paused", APISchemas.queue), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let resumeQueue = Endpoint(
        .post, "/queues/{queue}/resume", id: "resumeQueue", tag: "queues", summary: "Resume a paused queue; its runners are woken",
        parameters: [queueName],
        responses: [.json(200, "The queue, running", APISchemas.queue), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let setQueueLimits = Endpoint(
        .patch, "/queues/{queue}", id: "setQueueLimits", tag: "queues",
        summary: "Set or clear a queue's limits, across all runners",
        description: """
            A field left out keeps its value; null clears it. `concurrency` caps the queue's RUNNING jobs (per value of the \
            argument `partition_by` names, when set); `rate` caps starts in any window of `period`. Limits are enforced in \
            the claim itself and never exceeded, whatever the number of runners; a partitioned claim looks at the first 1,000 \
            waiting jobs of the queue. Creates the queue's row when it has none.
            """,
        parameters: [queueName], body: RequestBody(schema: APISchemas.limitsChange),
        responses: [.json(200, "The queue with its limits", APISchemas.queue), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let listKinds = Endpoint(
        .get, "/kinds", id: "listKinds", tag: "queues", summary: "Every kind runners registered or someone limited, with its limits",
        responses: [.json(200, "The kinds, by name", APISchemas.kindList), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let setKindLimits = Endpoint(
        .patch, "/kinds/{kind}", id: "setKindLimits", tag: "queues",
        summary: "Set or clear a kind's limits, across every queue and runner",
        description: "As PATCH /queues/{queue}, for every job of the kind whatever its queue; 404 for a kind no runner registered. A runner serving a limited kind claims through the limited path on each of its queues.",
        parameters: [kindName], body: RequestBody(schema: APISchemas.limitsChange),
        responses: [
            .json(200, "The kind with its limits", APISchemas.kind), APIResponses.notFound, APIResponses.databaseUnavailable,
            APIResponses.internalError,
        ])
}
