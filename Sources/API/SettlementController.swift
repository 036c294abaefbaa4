import Foundation
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import Shop
import Skipper

/// `POST /jobs/settlement` and `GET /downloads/{job_id}.csv`.
struct SettlementController: Sendable {
    let database: Database
    let arguments: ArgumentCheck
    let logger: Logger

    func addRoutes(to api: APIRoutes) {
        api.add(.submitSettlement, use: self.submit)
        api.add(.downloadSettlement, use: self.download)
    }

    /// `{"from": "2025-01-01", "to": "2025-01-31"}` → 202 `{"job_id", "status": "QUEUED"}`.
    @Sendable func submit(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        // The body (an object of known fields) is the job's arguments, checked by the settlement handler itself, as
        // POST /jobs would.
        let json = JSONValue.object(input.bodyObject).jsonText
        try self.arguments.check(kind: Settlement.kind, args: json, prefix: "")
        let options = JobOptions(maxAttempts: 5, meta: TraceContext.jobMeta(request, context: context))
        let (job, _) = try await self.database.run { database in try await database.client.submit(kind: Settlement.kind, argsJSON: json, options: options) }
        return jsonResponse(.accepted, #"{"job_id":\#(job.id),"status":"QUEUED"}"#, headers: [.location: "/jobs/\(job.id)"])
    }

    /// The settlement CSV, streamed chunk by chunk from `skipper.job_artifacts`: the API holds one chunk at a time.
    @Sendable func download(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let id = input.parameters.integer("job_id")!
        let logger = self.logger
        guard let job = try await self.database.run({ database in try await database.store.job(id: id) }) else { throw APIError.notFound("job \(id)") }
        if !job.status.isFinished {
            throw APIError(status: .conflict, code: "NOT_READY", message: "job \(id) is \(job.status.rawValue); its file is not ready yet")
        }
        guard job.hasArtifact else { throw APIError.notFound("a file for job \(id)") }
        let chunks = try await self.database.run { database -> Int32 in
            let rows = try await database.postgres.query(
                "SELECT coalesce(max(seq), -1) FROM skipper.job_artifacts WHERE job_id = \(id) AND name = \(Settlement.artifactName)",
                logger: logger)
            for try await last in rows.decode(Int32.self) { return last }
            return -1
        }
        let postgres = self.database.postgres
        let body = ResponseBody { writer in
            for seq in 0...max(chunks, 0) {
                let rows = try await postgres.query(
                    "SELECT data FROM skipper.job_artifacts WHERE job_id = \(id) AND name = \(Settlement.artifactName) AND seq = \(seq)",
                    logger: logger)
                for try await data in rows.decode(ByteBuffer.self) { try await writer.write(data) }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"settlement-\(id).csv\""],
            body: body)
    }
}
