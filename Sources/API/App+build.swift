import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Skipper

/// The request context of every route.
typealias APIRequestContext = BasicRequestContext

/// Builds the API; `main` and the tests share it.
func buildApplication(config: SkipperConfig, logger: Logger) async throws -> some ApplicationProtocol {
    let postgres = PostgresClient(
        configuration: config.database.clientConfiguration(maxConnections: config.poolSize, applicationName: "skipper-api"),
        backgroundLogger: logger
    )
    let router = Router(context: APIRequestContext.self)
    HealthController(postgres: postgres, logger: logger).addRoutes(to: router)
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: "skipper-api"),
        logger: logger
    )
    app.addServices(postgres)
    return app
}

/// Prints one line on stderr and exits: for configuration errors before anything has started.
func exitProcess(_ code: Int32, message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    Foundation.exit(code)
}
