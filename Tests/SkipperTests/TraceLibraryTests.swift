import Instrumentation
import ServiceContextModule
import SkipperTesting
import Testing
import TestSupport
import Tracing

@testable import Skipper

/// The trace context an application's instrument propagates, as W3C's `traceparent` text.
private enum TestTraceKey: ServiceContextKey {
    typealias Value = String
}

/// An application's tracer, as far as this test needs one: it propagates the context's `traceparent` in and out of
/// carriers, and its spans only carry the context. Bound to the test's task (`withTracer`), never bootstrapped for
/// the whole test process.
private struct TestTracer: Tracer {
    typealias Span = NoOpTracer.NoOpSpan

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> NoOpTracer.NoOpSpan {
        NoOpTracer.NoOpSpan(context: context())
    }

    func forceFlush() {}

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        if let value = extractor.extract(key: "traceparent", from: carrier) { context[TestTraceKey.self] = value }
    }

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        if let value = context[TestTraceKey.self] { injector.inject(value, forKey: "traceparent", into: &carrier) }
    }
}

/// Answers with the trace context its execution runs in.
private struct SeeTrace: JobHandler {
    struct Args: Codable, Sendable {}
    struct Output: Codable, Sendable {
        var traceparent: String?
    }
    static let kind = "test.see-trace"

    func run(_ args: Args, context: JobContext) async throws -> Output? {
        Output(traceparent: ServiceContext.current?[TestTraceKey.self])
    }
}

/// A job enqueued by the library inside a trace runs inside it: the application's instrument writes the context into
/// the job's meta, and the runner's execution continues it (the handler sees it, and so would its own spans).
@Suite struct TraceLibraryTests {
    @Test func aJobEnqueuedInsideATraceRunsInsideIt() async throws {
        try await withTracer(TestTracer()) { try await self.enqueueAndRun() }
    }

    func enqueueAndRun() async throws {
        try await withTestDatabase { db in
            let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            let configuration = db.config.clientConfiguration(maxConnections: 4, applicationName: "skipper-testing")
            let (inside, outside, explicit) = try await RunnerTester.with(configuration: configuration, handlers: [AnyJobHandler(SeeTrace())]) { runner in
                var context = ServiceContext.topLevel
                context[TestTraceKey.self] = traceparent
                let traced = try await ServiceContext.withValue(context) {
                    try await runner.client.enqueue(kind: SeeTrace.kind, args: SeeTrace.Args())
                }
                let plain = try await runner.client.enqueue(kind: SeeTrace.kind, args: SeeTrace.Args())
                // A traceparent the options carry already is kept.
                let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                let kept = try await ServiceContext.withValue(context) {
                    try await runner.client.enqueue(
                        kind: SeeTrace.kind, args: SeeTrace.Args(), options: JobOptions(meta: ["traceparent": own]))
                }
                return (
                    try await runner.waitForJob(traced.id, timeout: .seconds(20)), try await runner.waitForJob(plain.id, timeout: .seconds(20)),
                    try await runner.waitForJob(kept.id, timeout: .seconds(20))
                )
            }
            #expect(inside.meta == #"{"traceparent": "\#(traceparent)"}"#)
            #expect(inside.result == #"{"traceparent": "\#(traceparent)"}"#)
            #expect(outside.meta == "{}")
            #expect(outside.result == "{}")
            #expect(explicit.result == #"{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#)
        }
    }
}
