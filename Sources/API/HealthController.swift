import Hummingbird
import Logging
import PostgresNIO
import Skipper

/// `GET /health`: the process is alive and serving. It does not touch the database, so an orchestrator does not
/// restart a healthy API while PostgreSQL is down.
struct HealthController {
    let postgres: PostgresClient
    let logger: Logger

    func addRoutes(to router: Router<APIRequestContext>) {
        router.get("health") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
    }
}
