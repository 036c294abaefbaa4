import Foundation
import Hummingbird
import Logging
import Skipper

/// `/queues` and `/kinds`: pause flags and limits, read and changed. The rows are `skipper.queues` and
/// `skipper.kinds`; runners read them within half a second, and their claims check them in the same statement.
struct QueuesController: Sendable {
    let database: Database
    let logger: Logger

    func addRoutes(to api: APIRoutes) {
        api.add(.listQueues, use: self.list)
        api.add(.pauseQueue, use: self.pause)
        api.add(.resumeQueue, use: self.resume)
        api.add(.setQueueLimits, use: self.setQueueLimits)
        api.add(.listKinds, use: self.listKinds)
        api.add(.setKindLimits, use: self.setKindLimits)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let queues = try await self.database.run { database in try await database.store.queues() }
        return jsonResponse(.ok, #"{"queues":["# + queues.joined(separator: ",") + "]}")
    }

    @Sendable func pause(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        try await self.setPaused(input, true)
    }

    @Sendable func resume(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        try await self.setPaused(input, false)
    }

    private func setPaused(_ input: Input, _ paused: Bool) async throws -> Response {
        let queue = input.parameters.string("queue")!
        let json = try await self.database.run { database in try await database.store.setPaused(queue: queue, paused) }
        self.logger.info(paused ? "queue paused" : "queue resumed", metadata: ["queue": "\(queue)"])
        return jsonResponse(.ok, json)
    }

    @Sendable func setQueueLimits(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let queue = input.parameters.string("queue")!
        let change = try Self.limitsChange(input)
        let json = try await self.database.run { database in try await Self.refusalsAsFields { try await database.store.setLimits(queue: queue, change) } }
        self.logger.info("queue limits changed", metadata: ["queue": "\(queue)", "change": "\(JSONValue.object(input.bodyObject).jsonText)"])
        return jsonResponse(.ok, json)
    }

    @Sendable func listKinds(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let kinds = try await self.database.run { database in try await database.store.kinds() }
        return jsonResponse(.ok, #"{"kinds":["# + kinds.joined(separator: ",") + "]}")
    }

    @Sendable func setKindLimits(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let kind = input.parameters.string("kind")!
        let change = try Self.limitsChange(input)
        let changed = try await self.database.run { database in try await Self.refusalsAsFields { try await database.store.setLimits(kind: kind, change) } }
        guard let json = changed else { throw APIError.notFound("kind '\(kind)' (no runner has registered it)") }
        self.logger.info("kind limits changed", metadata: ["kind": "\(kind)", "change": "\(JSONValue.object(input.bodyObject).jsonText)"])
        return jsonResponse(.ok, json)
    }

    /// The body (checked against ``APISchemas/limitsChange``) as a change: a field left out keeps its value, null
    /// clears it. What the schema cannot say is checked here, naming the field.
    static func limitsChange(_ input: Input) throws -> LimitsChange {
        let body = input.bodyObject
        var change = LimitsChange()
        if let value = body["concurrency"] {
            change.concurrency = value == .null ? .clear : .set(Int32(input.body.integer("concurrency")!))
        }
        if let value = body["partition_by"] {
            if value == .null {
                change.partitionBy = .clear
            } else {
                let path = input.body.string("partition_by")!
                guard LimitsChange.isArgumentPath(path) else {
                    throw APIError.invalidField(
                        "partition_by", "must be an argument path such as args.merchant_id (args, then 1 to 8 keys of letters, digits, _ or -), not '\(path)'")
                }
                change.partitionBy = .set(path)
            }
        }
        if let value = body["rate"] {
            if case .object(let rate) = value, case .int(let limit)? = rate["limit"], case .string(let text)? = rate["period"] {
                let period = try APIError.duration(text, field: "rate.period", in: .seconds(1) ... .seconds(7 * 86_400))
                change.rate = .set(RateLimit(limit: Int32(limit), period: period))
            } else {
                change.rate = .clear
            }
        }
        return change
    }

    /// PostgreSQL's checks on limits that do not hold together, as 422 naming the field.
    static func refusalsAsFields<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let refused as LimitsRefused {
            throw APIError.invalidField(refused.field, refused.message)
        }
    }
}
