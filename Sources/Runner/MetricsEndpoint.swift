import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

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
        let app = Application(
            router: router, configuration: .init(address: .hostname(self.host, port: self.port), serverName: "skipper-runner"),
            logger: self.logger)
        self.logger.info("serving Prometheus metrics", metadata: ["metrics.address": "\(self.host):\(self.port)"])
        // A service of the runner's group: its graceful shutdown stops the server too.
        try await app.run()
    }
}
