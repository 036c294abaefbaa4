// An application that uses Skipper as a library: its own table (`receipts`), its own job kind, the job enqueued in
// the same transaction as the row it follows from, a runner in the application's own ServiceGroup, Skipper's
// migrations applied from Swift, and a request that awaits the job's typed result. CI builds it and drives it
// against a test database (Tests/RunnerTests/ExampleServiceTests.swift); the README shows this file.
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Skipper
import Synchronization

/// The job: renders a receipt and records when.
struct RenderReceipt: JobHandler {
    struct Args: Codable, Sendable {
        var receiptID: Int64
    }
    struct Output: Codable, Sendable {
        var text: String
    }
    static let kind = "receipt.render"

    func check(_ args: Args) throws {
        guard args.receiptID > 0 else { throw ArgumentsError(field: "receiptID", message: "must be positive") }
    }

    func run(_ args: Args, context: JobContext) async throws -> Output? {
        // Written once per job even if an attempt is superseded: the fenced transaction checks this attempt still
        // holds the job.
        try await context.withFencedTransaction { connection in
            let rows = try await connection.query(
                "UPDATE receipts SET rendered_at = now() WHERE id = \(args.receiptID) RETURNING customer, amount_cents",
                logger: context.logger)
            for try await (customer, cents) in rows.decode((String, Int64).self) {
                return Output(text: "Receipt \(args.receiptID) for \(customer): \(cents / 100).\(String(format: "%02d", cents % 100))")
            }
            throw JobError.permanent("no receipt \(args.receiptID)")
        }
    }
}

struct NewReceipt: Decodable {
    var customer: String
    var amountCents: Int64
}

struct Created: ResponseCodable {
    var receiptID: Int64
    var jobID: Int64
}

struct Rendered: ResponseCodable {
    var text: String
}

@main
struct ReceiptService {
    static func main() async throws {
        let env = ProcessInfo.processInfo.environment
        let database = try DatabaseConfig(environment: env)
        let logger = Logger(label: "receipts")
        let postgres = PostgresClient(
            configuration: database.clientConfiguration(maxConnections: 20, applicationName: "receipts"), backgroundLogger: logger)
        let control = PostgresClient(
            configuration: database.clientConfiguration(maxConnections: 2, applicationName: "receipts-control"), backgroundLogger: logger)
        let migrations = SkipperMigrations(postgres: postgres, logger: logger)
        let skipper = SkipperClient(postgres: postgres, logger: logger)
        var config = RunnerConfig()
        config.workers = 4
        let runner = try JobRunner(
            postgres: postgres, control: control, config: config, handlers: [AnyJobHandler(RenderReceipt())],
            migrations: migrations, logger: logger)

        let ready = Atomic<Bool>(false)
        let router = Router()
        router.get("/health") { _, _ in ready.load(ordering: .acquiring) ? HTTPResponse.Status.ok : .serviceUnavailable }
        // The receipt and its job commit together, or neither does.
        router.post("/receipts") { request, context -> Created in
            let input = try await request.decode(as: NewReceipt.self, context: context)
            do {
                return try await skipper.withTransaction { connection, enqueue in
                let rows = try await connection.query(
                    "INSERT INTO receipts (customer, amount_cents) VALUES (\(input.customer), \(input.amountCents)) RETURNING id",
                    logger: logger)
                    var receiptID: Int64 = 0
                    for try await id in rows.decode(Int64.self) { receiptID = id }
                    let job = try await enqueue.enqueue(
                        RenderReceipt(), .init(receiptID: receiptID), options: JobOptions(announceFinish: true))
                    return Created(receiptID: receiptID, jobID: job.id)
                }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23514" {
                // A negative amount: the row is refused, and the job with it (one transaction).
                throw HTTPError(.unprocessableContent, message: "amountCents must not be negative")
            }
        }
        // Waits for the job's typed result.
        router.get("/jobs/{id}/result") { _, context -> Rendered in
            let id = try context.parameters.require("id", as: Int64.self)
            let output = try await skipper.handle(RenderReceipt.self, id: id).result(timeout: .seconds(10))
            return Rendered(text: output?.text ?? "")
        }

        var app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: Int(env["PORT"] ?? "8090") ?? 8090), serverName: "receipts"),
            onServerRunning: { _ in
                // The application's own table, once Skipper's schema is in place (its own migrations would go here).
                try? await migrations.waitUntilApplied()
                try? await postgres.query(
                    """
                    CREATE TABLE IF NOT EXISTS receipts (
                      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer text NOT NULL,
                      amount_cents bigint NOT NULL CHECK (amount_cents >= 0), rendered_at timestamptz)
                    """, logger: logger)
                ready.store(true, ordering: .releasing)
                logger.info("receipts: ready")
            },
            logger: logger)
        app.addServices(postgres, control, migrations, skipper, runner)
        try await app.runService()
    }
}
