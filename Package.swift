// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "skipper",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Skipper", targets: ["Skipper"]),
        // For an application's tests: a handler run without a runner, and a runner in-process that a test waits on.
        .library(name: "SkipperTesting", targets: ["SkipperTesting"]),
        .library(name: "Shop", targets: ["Shop"]),
        .executable(name: "skipper-api", targets: ["API"]),
        .executable(name: "skipper-runner", targets: ["Runner"]),
        .executable(name: "skipper-migrate", targets: ["Migrate"]),
        .executable(name: "skipper-bench", targets: ["Bench"]),
        // An application using Skipper as a library (README: "Your own job kinds"); built and driven by the tests.
        .executable(name: "skipper-example", targets: ["ReceiptService"]),
        // Tests only: skipper-runner's kinds plus `trace`, which records each execution.
        .executable(name: "skipper-test-runner", targets: ["TestRunner"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // Trace context from request to job: spans through swift-distributed-tracing, exported (when configured)
        // by swift-otel over OTLP/HTTP only; its gRPC exporter (a trait on by default) is left out of the build.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        // The API contract's tests: OpenAPIKit parses and validates the served document, and a client generated
        // from the committed copy (swift-openapi-generator's build plugin) drives a live API.
        .package(url: "https://github.com/mattpolzin/OpenAPIKit", from: "6.4.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-openapi-generator", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.4"),
        .package(url: "https://github.com/apple/swift-openapi-urlsession", from: "1.4.0"),
    ],
    targets: [
        // Test helpers for applications that use Skipper (the SkipperTesting product).
        .target(
            name: "SkipperTesting",
            dependencies: [
                "Skipper",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The queue library: config, Postgres setup, the job model, every SQL statement of the queue.
        .target(
            name: "Skipper",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                // The runner's instruments (skipper-runner exports them to Prometheus; an application, to its backend).
                .product(name: "CoreMetrics", package: "swift-metrics"),
                // Each execution a span in the trace the job was submitted in, for the tracer the application bootstraps.
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The shop's job kinds and their SQL.
        .target(
            name: "Shop",
            dependencies: [
                "Skipper",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "API",
            dependencies: [
                "Skipper", "Shop",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // Only for HTTPParserError: a request that is not valid HTTP is a 400.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // Only for its ConnectionPoolError: a pool that cannot connect (or has shut down) is a 503.
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
            ]
        ),
        .executableTarget(
            name: "ReceiptService",
            dependencies: ["Skipper", .product(name: "Hummingbird", package: "hummingbird")],
            path: "Examples/ReceiptService"
        ),
        .executableTarget(
            name: "Runner",
            dependencies: [
                "Skipper", "Shop",
                // METRICS_PORT: Prometheus text at /metrics.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                // OTEL_TRACES_EXPORTER=otlp: the jobs' spans, exported over OTLP/HTTP.
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // libpq, for running multi-statement migration files with the simple-query protocol.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .executableTarget(
            name: "Migrate",
            dependencies: [
                "CLibPQ", "Skipper",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // make bench: the queue against the raw SQL it needs, in one run.
        .executableTarget(
            name: "Bench",
            dependencies: ["Skipper", "TestSupport", .product(name: "PostgresNIO", package: "postgres-nio")]
        ),
        // Shared by the test targets: a fresh PostgreSQL database per suite, paths to the built executables.
        .target(
            name: "TestSupport",
            dependencies: [
                "Skipper",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport"
        ),
        .executableTarget(
            name: "TestRunner",
            dependencies: ["Skipper", "Shop", .product(name: "PostgresNIO", package: "postgres-nio")],
            path: "Tests/TestRunner"
        ),
        .testTarget(
            name: "SkipperTests",
            dependencies: [
                "Skipper", "SkipperTesting", "TestSupport",
                // A propagator of the test's own, bootstrapped to see a trace go from enqueue to execution.
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ]),
        .testTarget(name: "ShopTests", dependencies: ["Shop", "TestSupport"]),
        .testTarget(
            name: "APITests",
            dependencies: [
                "API", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "OpenAPIKit", package: "OpenAPIKit"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // A client generated from Tests/APIClientTests/openapi.yaml (the committed copy of the served document),
        // against a live API and a real runner.
        .testTarget(
            name: "APIClientTests",
            dependencies: [
                "API", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIURLSession", package: "swift-openapi-urlsession"),
            ],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        .testTarget(name: "RunnerTests", dependencies: ["Runner", "ReceiptService", "TestSupport"]),
        .testTarget(name: "MigrateTests", dependencies: ["Migrate", "Skipper", "TestSupport"]),
        // The dashboard (/ui) in a headless Chromium driven over WebDriver by chromedriver, against a live skipper-api
        // and skipper-test-runner; screenshots of every page in .build/test-output/ui/.
        .testTarget(
            name: "BrowserTests",
            dependencies: [
                "API", "Runner", "TestRunner", "TestSupport",
                // Its NIO HTTP client speaks to chromedriver (URLSession on Linux cannot read chromedriver's headers).
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
