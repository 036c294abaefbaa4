import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Prometheus
import Shop
import Skipper

/// Builds the API; `main` and the tests share it.
func buildApplication(config: SkipperConfig, logger: Logger) async throws -> some ApplicationProtocol {
    let postgres = PostgresClient(
        configuration: config.database.clientConfiguration(
            maxConnections: config.poolSize, applicationName: "skipper-api", statementTimeout: config.databaseTimeout),
        backgroundLogger: logger
    )
    // Behind a transaction-pooling PgBouncer, the event hub LISTENs over a direct connection of its own, or nowhere.
    let listen = config.database.pooled
        ? config.listenDatabase.map {
            PostgresClient(configuration: $0.clientConfiguration(maxConnections: 2, applicationName: "skipper-api-listen"), backgroundLogger: logger)
        }
        : nil
    logger.info("database", metadata: ["connection": "\(config.database.connectionMode(listen: config.listenDatabase))"])
    if config.listenDatabase != nil, !config.database.pooled {
        logger.warning("LISTEN_DATABASE_URL is ignored: it serves behind PgBouncer (DB_POOLER=pgbouncer)")
    }
    let api = buildRouter(config: config, postgres: postgres, listen: config.database.pooled ? listen : postgres, logger: logger)
    var app = Application(
        router: api.router,
        // A connection that stops sending in the middle of a request (or sits idle between requests) is closed after
        // 30 s; responses being written, such as event streams, are not cut.
        server: .http1(configuration: .init(idleTimeout: .seconds(30))),
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: "skipper-api"),
        logger: logger
    )
    app.addServices(postgres)
    if let listen { app.addServices(listen) }
    app.addServices(api.client, api.events)
    return app
}

/// The router with every route and middleware, the services its routes need running (the event hub of the SSE
/// streams and the enqueue client's wake-ups), and the document of its routes.
struct APIRouter {
    let router: Router<APIRequestContext>
    let events: EventHub
    let client: SkipperClient
    let document: APIDocument
}

/// `listen`: where the event hub LISTENs (the pool itself, unless a pooler is in between).
func buildRouter(config: SkipperConfig, postgres: PostgresClient, listen: PostgresClient?, logger: Logger) -> APIRouter {
    let router = Router(context: APIRequestContext.self)
    let routes = RouteIndex()
    let registry = PrometheusCollectorRegistry()
    // Middleware applies to the routes added after it: metrics outermost, so they see the final status.
    router.add(middleware: MetricsMiddleware(registry: registry))
    router.add(middleware: RequestMiddleware(routes: routes, logger: logger))
    router.add(middleware: AuthMiddleware(tokens: config.apiTokens, routes: routes))
    let database = Database(
        postgres: postgres, client: SkipperClient(postgres: postgres, logger: logger, prepared: !config.database.pooled),
        deadline: .nanoseconds(Int64(config.databaseTimeout / .nanoseconds(1))))
    let events = EventHub(postgres: listen, maxStreams: config.maxEventStreams, logger: logger)
    let arguments = ArgumentCheck(handlers: Dictionary(uniqueKeysWithValues: (BuiltIn.handlers + Shop.handlers()).map { ($0.kind, $0) }))
    // Every route goes through the route table, which documents it.
    let api = APIRoutes(router: router)
    let operations = OperationsController(database: database, events: events, registry: registry, logger: logger)
    operations.addRoutes(to: api)
    let jobs = JobsController(database: database, events: events, arguments: arguments, logger: logger)
    jobs.addRoutes(to: api)
    QueuesController(database: database, logger: logger).addRoutes(to: api)
    DashboardController(database: database, events: events, chartJS: config.chartJS, logger: logger).addRoutes(to: api)
    SchedulesController(database: database, arguments: arguments, kinds: jobs.kinds, logger: logger).addRoutes(to: api)
    SettlementController(database: database, arguments: arguments, logger: logger).addRoutes(to: api)
    ShopController(database: database, orders: OrderStore(skipper: database.client, logger: logger), logger: logger)
        .addRoutes(to: api)
    routes.load(from: api)
    operations.document.set(api.document)
    return APIRouter(router: router, events: events, client: database.client, document: api.document)
}

/// The OpenAPI document of this build's routes (`skipper-api openapi`), without a database: the route table is
/// built with a client that never connects.
func openAPIDocument() throws -> APIDocument {
    let config = try SkipperConfig(environment: ["DATABASE_URL": "postgres://openapi@127.0.0.1:1/openapi"])
    let logger = Logger(label: "skipper.openapi")
    let postgres = PostgresClient(configuration: config.database.clientConfiguration(applicationName: "skipper-api"), backgroundLogger: logger)
    return buildRouter(config: config, postgres: postgres, listen: nil, logger: logger).document
}

/// Prints one line on stderr and exits: for configuration errors before anything has started.
func exitProcess(_ code: Int32, message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    Foundation.exit(code)
}
