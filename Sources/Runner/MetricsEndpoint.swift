import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import Skipper
import Synchronization

/// `METRICS_PORT`: the runner's instruments (jobs finished per kind and outcome, run time and lag histograms, claims,
/// completer batches and write times, running jobs, lease age) as Prometheus text at `GET /metrics`, on
/// `METRICS_HOST` (default 127.0.0.1). Made before the runner, it bootstraps swift-metrics, so every instrument made
/// after it reports here.
struct MetricsEndpoint: Service {
    let registry = PrometheusCollectorRegistry()
    let port: Int
    let host: String
    let logger: Logger

    init(port: Int, host: String, logger: Logger) {
        self.port = port
        self.host = host
        self.logger = logger
        var factory = PrometheusMetricsFactory(registry: self.registry)
        // Jobs run for milliseconds to hours; claims and batches hold 1 to a few hundred jobs.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
            .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(1800),
        ]
        factory.defaultValueHistogramBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
        MetricsSystem.bootstrap(factory)
    }

    func run() async throws {
        let router = Router()
        let registry = self.registry
        router.get("/metrics") { _, _ -> Response in
            var text: [UInt8] = []
            registry.emit(into: &text)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        let open = OpenConnections(limit: Self.maxConnections)
        let listening = Atomic<Bool>(false)
        let (host, port, logger) = (self.host, self.port, self.logger)
        // Scrapers come back every few seconds: a connection idle for 10 s is closed, and past 32 at once new ones
        // are, so connections held open (a half-sent request, a slow loris) cannot take the descriptors the runner
        // needs for PostgreSQL.
        let app = Application(
            router: router,
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionLimiter(open)], idleTimeout: .seconds(10))),
            configuration: .init(address: .hostname(host, port: port), serverName: "skipper-runner"),
            onServerRunning: { _ in
                listening.store(true, ordering: .relaxed)
                logger.info("serving Prometheus metrics", metadata: ["metrics.address": "\(host):\(port)"])
            },
            logger: self.logger)
        do {
            // A service of the runner's group: its graceful shutdown stops the server too.
            try await app.run()
        } catch where !listening.load(ordering: .relaxed) {
            throw ConfigError(name: "METRICS_PORT", message: "cannot listen on \(host):\(port) (METRICS_HOST, METRICS_PORT): \(error)")
        }
    }

    /// The most connections to the metrics port open at once.
    static let maxConnections = 32
}

/// Connections open to a server, and how many may be.
final class OpenConnections: Sendable {
    let limit: Int
    let count = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }
}

/// Closes a connection at once when `limit` others are open already.
final class ConnectionLimiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let open: OpenConnections
    private var counted = false

    init(_ open: OpenConnections) { self.open = open }

    func channelActive(context: ChannelHandlerContext) {
        guard self.open.count.wrappingAdd(1, ordering: .relaxed).newValue <= self.open.limit else {
            self.open.count.wrappingSubtract(1, ordering: .relaxed)
            context.close(promise: nil)
            return
        }
        self.counted = true
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.counted {
            self.counted = false
            self.open.count.wrappingSubtract(1, ordering: .relaxed)
        }
        context.fireChannelInactive()
    }
}
