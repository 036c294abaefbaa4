/// What SchedulesController serves: periodic jobs.
extension Endpoint {
    static let scheduleName = Parameter(
        "name", in: .path, schema: APISchemas.name, description: "The schedule's name", expected: "a schedule name is 1 to 128 printable characters",
        componentName: "ScheduleName")

    static let saveSchedule = Endpoint(
        .post, "/schedules", id: "saveSchedule", tag: "schedules", summary: "Create a periodic job, or replace the one of that name",
        description: """
            Exactly one job per tick, whatever the number of runners: the tick is recorded (skipper.schedule_ticks) in the \
            transaction that enqueues its job. Ticks missed while no runner ran make one job for the latest of them \
            (`catch_up: latest`) or none (`catch_up: none`, where a tick more than a minute late counts as missed). \
            Replacing keeps a pause, and the next tick when `cron` and `timezone` are unchanged. Each job's meta holds \
            `schedule` and `scheduled_for` (the tick).
            """,
        body: RequestBody(schema: APISchemas.newSchedule),
        responses: [
            .json(200, "Replaced: the schedule", APISchemas.schedule, headers: [APIHeaders.location]),
            .json(201, "Created: the schedule", APISchemas.schedule, headers: [APIHeaders.location]),
            .error(
                422, ["UNKNOWN_KIND", "INVALID_ARGS"],
                "UNKNOWN_KIND: no runner has registered the kind. INVALID_ARGS: the arguments fail the kind's own check."),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let listSchedules = Endpoint(
        .get, "/schedules", id: "listSchedules", tag: "schedules", summary: "Every schedule, with its next tick and last job",
        responses: [.json(200, "The schedules, by name", APISchemas.scheduleList), APIResponses.databaseUnavailable, APIResponses.internalError])

    static let getSchedule = Endpoint(
        .get, "/schedules/{name}", id: "getSchedule", tag: "schedules", summary: "Read a schedule",
        parameters: [scheduleName],
        responses: [.json(200, "The schedule", APISchemas.schedule), APIResponses.notFound, APIResponses.databaseUnavailable, APIResponses.internalError])

    static let deleteSchedule = Endpoint(
        .delete, "/schedules/{name}", id: "deleteSchedule", tag: "schedules",
        summary: "Delete a schedule (the jobs it made stay; a runner's program that declares it writes it again when it starts)",
        parameters: [scheduleName],
        responses: [
            Response(status: 204, description: "Deleted"), APIResponses.notFound, APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let pauseSchedule = Endpoint(
        .post, "/schedules/{name}/pause", id: "pauseSchedule", tag: "schedules", summary: "Pause a schedule: it makes no job until resumed",
        parameters: [scheduleName],
        responses: [.json(200, "The schedule, paused", APISchemas.schedule), APIResponses.notFound, APIResponses.databaseUnavailable, APIResponses.internalError])

    static let resumeSchedule = Endpoint(
        .post, "/schedules/{name}/resume", id: "resumeSchedule", tag: "schedules",
        summary: "Resume a schedule: its next tick is computed from now (ticks that fell while it was paused are not made)",
        parameters: [scheduleName],
        responses: [.json(200, "The schedule, running", APISchemas.schedule), APIResponses.notFound, APIResponses.databaseUnavailable, APIResponses.internalError])
}
