import Foundation
import Hummingbird
import Logging
import Prometheus
import Skipper
import Synchronization

/// `/health`, `/ready`, `/metrics`, `/openapi.yaml`: what operators and orchestrators ask.
struct OperationsController: Sendable {
    let database: Database
    let events: EventHub
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    /// The served document, written once every route is registered (this controller's own included).
    let document = ServedDocument()

    func addRoutes(to api: APIRoutes) {
        api.add(.health, use: self.health)
        api.add(.ready, use: self.ready)
        api.add(.metrics, use: self.metrics)
        api.add(.openAPI, use: self.openAPI)
    }

    /// Alive and serving. It does not touch the database, so an orchestrator does not restart a healthy API
    /// while PostgreSQL is down; /ready says whether it can do useful work.
    @Sendable func health(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        jsonResponse(.ok, #"{"status":"ok"}"#)
    }

    /// The database answers and its schema is at the version this build expects; 503 with the reason otherwise.
    @Sendable func ready(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let logger = self.logger
        let status: SchemaVersion.Status
        do {
            status = try await self.database.run { database in try await SchemaVersion.check(database.postgres, logger: logger) }
        } catch let error as APIError {
            throw APIError(status: .serviceUnavailable, code: "NOT_READY", message: "database unavailable: \(error.message)")
        }
        guard case .ready(let version) = status else {
            throw APIError(status: .serviceUnavailable, code: "NOT_READY", message: status.description)
        }
        return jsonResponse(.ok, #"{"status":"ready","schema_version":\#(version)}"#)
    }

    /// Prometheus text: the HTTP metrics kept in memory, and the queue depth read from the database now.
    @Sendable func metrics(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        var text: [UInt8] = []
        self.registry.emit(into: &text)
        var output = String(decoding: text, as: UTF8.self)
        output += "# TYPE skipper_event_streams gauge\n# HELP skipper_event_streams Server-sent event streams open now.\n"
        output += "skipper_event_streams \(self.events.streams)\n"
        var up = 0
        do {
            let depth = try await self.database.run { database in try await database.store.depth() }
            output += "# TYPE skipper_jobs gauge\n"
            output += "# HELP skipper_jobs Jobs QUEUED or RUNNING, per queue.\n"
            for row in depth {
                output += "skipper_jobs{queue=\"\(Self.escape(row.queue))\",status=\"\(row.status.rawValue)\"} \(row.jobs)\n"
            }
            up = 1
        } catch {}
        output += "# TYPE skipper_database_up gauge\n# HELP skipper_database_up 1 when PostgreSQL answered this scrape, else 0.\n"
        output += "skipper_database_up \(up)\n"
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: output)))
    }

    @Sendable func openAPI(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: self.document.yaml))
    }

    private static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// The document's YAML, set once the route table is complete.
final class ServedDocument: Sendable {
    private let text = Mutex(ByteBuffer())

    func set(_ document: APIDocument) {
        let buffer = ByteBuffer(string: document.yaml)
        self.text.withLock { $0 = buffer }
    }

    var yaml: ByteBuffer { self.text.withLock { $0 } }
}
