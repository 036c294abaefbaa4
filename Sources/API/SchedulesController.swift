import Foundation
import Hummingbird
import Logging
import Skipper

/// `/schedules`: periodic jobs in `skipper.schedules`, which every runner ticks.
struct SchedulesController: Sendable {
    let database: Database
    let arguments: ArgumentCheck
    let kinds: KnownKinds
    let logger: Logger

    func addRoutes(to api: APIRoutes) {
        api.add(.saveSchedule, use: self.save)
        api.add(.listSchedules, use: self.list)
        api.add(.getSchedule, use: self.get)
        api.add(.deleteSchedule, use: self.delete)
        api.add(.pauseSchedule, use: self.pause)
        api.add(.resumeSchedule, use: self.resume)
    }

    @Sendable func save(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let body = input.body
        let name = body.string("name")!
        let kind = body.string("kind")!
        let args = body.json("args") ?? "{}"
        let timeout = try body.string("timeout").map {
            try APIError.duration($0, field: "timeout", in: .milliseconds(1) ... .milliseconds(Int64(Int32.max)))
        }
        let job: PeriodicJob
        do {
            job = try PeriodicJob(
                name: name, schedule: body.string("cron")!, timeZone: body.string("timezone")!, kind: kind, args: args,
                queue: body.string("queue")!, priority: Int16(body.integer("priority")!), maxAttempts: Int32(body.integer("max_attempts")!),
                timeout: timeout, catchUp: PeriodicJob.CatchUp(rawValue: body.string("catch_up")!) ?? .latest)
        } catch let error as CronSchedule.ParseError {
            throw APIError.invalidField(error.field, error.message)
        } catch let error as ConfigError {
            throw APIError.invalidField(error.name, error.message)
        }
        try self.arguments.check(kind: kind, args: args)
        let kinds = self.kinds
        let (json, created) = try await self.database.run { database in
            guard try await kinds.contains(kind, store: database.store) else {
                throw APIError(status: .unprocessableContent, code: "UNKNOWN_KIND", message: "kind: no runner has registered kind '\(kind)'")
            }
            return try await database.store.saveSchedule(job, source: "api")
        }
        self.logger.info(created ? "schedule created" : "schedule replaced", metadata: ["schedule": "\(name)", "cron": "\(job.schedule)"])
        return jsonResponse(created ? .created : .ok, json, headers: [.location: "/schedules/\(name)"])
    }

    @Sendable func list(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let schedules = try await self.database.run { database in try await database.store.schedules() }
        return jsonResponse(.ok, #"{"schedules":["# + schedules.joined(separator: ",") + "]}")
    }

    @Sendable func get(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let name = input.parameters.string("name")!
        guard let json = try await self.database.run({ database in try await database.store.schedules(named: name).first }) else {
            throw APIError.notFound("schedule '\(name)'")
        }
        return jsonResponse(.ok, json)
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let name = input.parameters.string("name")!
        guard try await self.database.run({ database in try await database.store.deleteSchedule(named: name) }) else {
            throw APIError.notFound("schedule '\(name)'")
        }
        self.logger.info("schedule deleted", metadata: ["schedule": "\(name)"])
        return Response(status: .noContent)
    }

    @Sendable func pause(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        try await self.setPaused(input, true)
    }

    @Sendable func resume(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        try await self.setPaused(input, false)
    }

    private func setPaused(_ input: Input, _ paused: Bool) async throws -> Response {
        let name = input.parameters.string("name")!
        guard let json = try await self.database.run({ database in try await database.store.setSchedulePaused(named: name, paused) }) else {
            throw APIError.notFound("schedule '\(name)'")
        }
        self.logger.info(paused ? "schedule paused" : "schedule resumed", metadata: ["schedule": "\(name)"])
        return jsonResponse(.ok, json)
    }
}
