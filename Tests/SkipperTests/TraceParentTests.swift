@testable import Skipper
import Testing

/// The `traceparent` a job carries in its meta: what the API keeps from a request, and what it replaces.
@Suite struct TraceParentTests {
    @Test func aValidHeaderIsKeptAsItIs() throws {
        let parent = try #require(TraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(parent.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(parent.parentID == "00f067aa0ba902b7")
        #expect(parent.flags == "01")
        #expect(parent.description == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        // A later version's first four fields are read, and propagated as version 00.
        #expect(TraceParent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next")?.description
                == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    }

    @Test func whatTheSpecificationRefusesIsNoTraceContext() {
        for header in [
            "", "junk", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // the forbidden version
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // version 00 is exactly 55 characters
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        ] {
            #expect(TraceParent(header) == nil, "\(header)")
        }
    }

    @Test func aNewTraceIsValidSampledAndNew() {
        let traces = (0..<100).map { _ in TraceParent.random() }
        #expect(Set(traces.map(\.traceID)).count == 100)
        for trace in traces {
            #expect(TraceParent(trace.description) == trace)
            #expect(trace.flags == "01")
        }
    }

    @Test func aTracestateIsKeptOnlyAsTheSpecificationWritesIt() {
        #expect(TraceParent.validState("vendor=opaque") == "vendor=opaque")
        #expect(TraceParent.validState("a=1 , b@tenant-7=x y,,\tc_*/-=~") == "a=1,b@tenant-7=x y,c_*/-=~")
        #expect(TraceParent.validState("7tenant@sys=1") == "7tenant@sys=1")
        for state in [
            "", ",", "foo", "A=1", "a=", "a=b=c", "1a=1", "a@B=1", "a@b@c=1", "a=\u{7f}",
            (0..<33).map { "k\($0)=v" }.joined(separator: ","),  // 33 members
            "a=" + String(repeating: "x", count: 257),  // a value over 256
            (0..<6).map { "k\($0)=" + String(repeating: "x", count: 100) }.joined(separator: ","),  // over 512 in all
        ] {
            #expect(TraceParent.validState(state) == nil, "\(state)")
        }
    }

    /// A job's trace is meta's own `traceparent`, never one nested in another object of meta (a job inserted by SQL
    /// or the library may carry any JSON there).
    @Test func onlyMetasOwnTraceparentIsTheJobsTrace() {
        let own = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let nested = "00-33333333333333333333333333333333-4444444444444444-01"
        #expect(TraceParent.inMeta(#"{"request_id": "r-1", "traceparent": "\#(own)"}"#)?.description == own)
        #expect(TraceParent.inMeta(#"{"a": {"traceparent": "\#(nested)"}, "request_id": "r-1"}"#) == nil)
        #expect(TraceParent.inMeta(#"{"a": {"traceparent": "\#(nested)"}, "traceparent": "\#(own)"}"#)?.description == own)
        #expect(TraceParent.inMeta(#"{"traceparent": "\#(own)", "z": {"b": 1}}"#)?.description == own)
    }
}
