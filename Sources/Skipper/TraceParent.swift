import Foundation
import Instrumentation
import ServiceContextModule

/// A W3C trace context's `traceparent` (https://www.w3.org/TR/trace-context/): which trace a job belongs to and
/// which span submitted it. Kept in the job's `meta` (`traceparent`, and `tracestate` when the submitter sent one);
/// the runner continues the trace for the job's execution (a span when a tracer is bootstrapped) and its log lines
/// (`trace_id`).
public struct TraceParent: Sendable, Hashable, CustomStringConvertible {
    /// 32 lowercase hex digits, not all zero.
    public let traceID: String
    /// The submitting span's id: 16 lowercase hex digits, not all zero.
    public let parentID: String
    /// The trace flags: 2 hex digits (`01`: sampled).
    public let flags: String

    /// Parses a `traceparent` header: version `00` exactly as the specification writes it, or a later version's
    /// first four fields. Nil for anything else (which a receiver ignores, starting a trace of its own).
    public init?(_ header: some StringProtocol) {
        let bytes = Array(header.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-")
        else { return nil }
        let version = bytes[0..<2], trace = bytes[3..<35], parent = bytes[36..<52], flags = bytes[53..<55]
        guard [version, trace, parent, flags].allSatisfy({ $0.allSatisfy(Self.isHex) }) else { return nil }
        guard !version.elementsEqual("ff".utf8) else { return nil }
        if version.elementsEqual("00".utf8) {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard bytes[55] == UInt8(ascii: "-") else { return nil }
        }
        guard trace.contains(where: { $0 != UInt8(ascii: "0") }), parent.contains(where: { $0 != UInt8(ascii: "0") }) else { return nil }
        self.traceID = String(decoding: trace, as: UTF8.self)
        self.parentID = String(decoding: parent, as: UTF8.self)
        self.flags = String(decoding: flags, as: UTF8.self)
    }

    /// A new trace, sampled: for a job submitted without one. Ids are random (an all-zero one, which the
    /// specification forbids, is drawn again).
    public static func random() -> TraceParent {
        func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        while true {
            if let parent = TraceParent("00-\(hex(.random(in: .min ... .max)))\(hex(.random(in: .min ... .max)))-\(hex(.random(in: .min ... .max)))-01") {
                return parent
            }
        }
    }

    /// The header's text, version `00`.
    public var description: String { "00-\(self.traceID)-\(self.parentID)-\(self.flags)" }

    private static func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    /// A `tracestate` header (the values of all of a request's `tracestate` headers, joined with commas) as the
    /// specification allows it: at most 32 comma-separated `key=value` members (empty ones ignored), keys
    /// `[a-z][a-z0-9_*/-]{0,255}` or `tenant@system`, values of printable ASCII without `,` or `=` and not ending in a
    /// space, 512 characters in all. The members, normalized (`a=1,b=2`), or nil: a state that does not parse is not
    /// propagated at all.
    public static func validState(_ header: String) -> String? {
        var members: [String] = []
        for raw in header.split(separator: ",", omittingEmptySubsequences: false) {
            let member = raw.trimmingCharacters(in: .init(charactersIn: " \t"))
            if member.isEmpty { continue }
            guard let equals = member.firstIndex(of: "="),
                Self.isStateKey(member[..<equals]), Self.isStateValue(member[member.index(after: equals)...])
            else { return nil }
            members.append(member)
        }
        let state = members.joined(separator: ",")
        guard !members.isEmpty, members.count <= 32, state.utf8.count <= 512 else { return nil }
        return state
    }

    private static func isStateKey(_ key: Substring) -> Bool {
        func part(_ text: Substring, first: (UInt8) -> Bool, maxLength: Int) -> Bool {
            let bytes = Array(text.utf8)
            guard let head = bytes.first, first(head), bytes.count <= maxLength else { return false }
            return bytes.dropFirst().allSatisfy { Self.isLowerAlpha($0) || Self.isDigit($0) || "_-*/".utf8.contains($0) }
        }
        let pieces = key.split(separator: "@", omittingEmptySubsequences: false)
        switch pieces.count {
        case 1: return part(pieces[0], first: Self.isLowerAlpha, maxLength: 256)
        case 2:
            return part(pieces[0], first: { Self.isLowerAlpha($0) || Self.isDigit($0) }, maxLength: 241)
                && part(pieces[1], first: Self.isLowerAlpha, maxLength: 14)
        default: return false
        }
    }

    private static func isStateValue(_ value: Substring) -> Bool {
        let bytes = Array(value.utf8)
        guard let last = bytes.last, bytes.count <= 256, last != 0x20 else { return false }
        return bytes.allSatisfy { (0x20...0x7e).contains($0) && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: "=") }
    }

    private static func isLowerAlpha(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }
    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    /// The meta key of the `traceparent`, and of the `tracestate` that goes with it.
    public static let metaKey = "traceparent"
    public static let stateMetaKey = "tracestate"

    /// The `traceparent` in a job's meta as PostgreSQL renders jsonb (`{"traceparent": "00-…", …}`), found without
    /// decoding the JSON: a valid one holds no character JSON escapes. Nil when there is none, or it is not valid.
    /// Only meta's own key counts: when meta holds a nested object (a job inserted by SQL or the library may), the
    /// key found could be inside it, and meta is decoded to look at the top level.
    static func inMeta(_ meta: String) -> TraceParent? {
        guard meta.utf8.count > 60, let key = meta.range(of: #""traceparent": ""#) else { return nil }
        if meta.utf8.dropFirst().contains(UInt8(ascii: "{")) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(meta.utf8)) as? [String: Any],
                let value = object[Self.metaKey] as? String
            else { return nil }
            return TraceParent(Substring(value))
        }
        let rest = meta[key.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return TraceParent(rest[..<end])
    }
}

extension JobOptions {
    /// These options with the current task's trace context (``ServiceContext/current``, as the bootstrapped
    /// instrument writes it) in `meta`, unless it has a `traceparent` already: a job enqueued inside a span is
    /// executed in a span of the same trace. Without a bootstrapped instrument nothing is added.
    func withCurrentTrace() -> JobOptions {
        guard self.meta[TraceParent.metaKey] == nil, let context = ServiceContext.current else { return self }
        var options = self
        InstrumentationSystem.instrument.inject(context, into: &options.meta, using: MetaInjector())
        return options
    }
}

/// Writes a trace context's headers into a job's meta.
struct MetaInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        let key = key.lowercased()
        guard key == TraceParent.metaKey || key == TraceParent.stateMetaKey else { return }
        carrier[key] = value
    }
}

/// Reads a trace context's headers from a job's meta.
struct MetaExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key.lowercased()] }
}
