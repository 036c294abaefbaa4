import Foundation
import Logging
import Synchronization

private let outputLock = Mutex(())

/// `LOG_FORMAT=json`: one JSON object per line on stderr, for log collectors: `ts` (RFC 3339, UTC, microseconds),
/// `level`, `logger` (the label), `msg`, then every metadata key (`job.id`, `runner.id`, `trace_id`...) as a string
/// field. A line is written whole with one `write`, so lines of concurrent tasks never interleave.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let write: @Sendable (String) -> Void

    /// Writes to standard error.
    public static func standardError(label: String, metadataProvider: Logger.MetadataProvider? = nil) -> JSONLogHandler {
        JSONLogHandler(label: label, metadataProvider: metadataProvider) { line in
            // One writer at a time: a long line is more than one write(2) on a pipe.
            // A line that cannot be written (a full non-blocking pipe, a closed reader) is dropped, as swift-log's
            // text handler drops it, never a crash.
            outputLock.withLock { _ in try? FileHandle.standardError.write(contentsOf: Data(line.utf8)) }
        }
    }

    /// Writes each line (ending in a newline) to `write`.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = self.metadata
        if let provided = self.metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let own = event.metadata { fields.merge(own) { _, new in new } }
        // The error a library attached to its line (swift-otel's export failures carry their reason only there).
        if let error = event.error, fields["error"] == nil { fields["error"] = "\(String(reflecting: error))" }
        var line = "{\"ts\":\"" + Self.timestamp() + "\",\"level\":\"" + event.level.rawValue + "\",\"logger\":"
        line += Self.quote(self.label) + ",\"msg\":" + Self.quote(event.message.description)
        for key in fields.keys.sorted() where !["ts", "level", "logger", "msg"].contains(key) {
            line += "," + Self.quote(key) + ":" + Self.quote(fields[key]!.description)
        }
        line += "}\n"
        self.write(line)
    }

    /// Now as `2026-12-01T09:30:00.123456Z`.
    static func timestamp() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(time.tv_nsec) / 1000)
    }

    /// `text` as a JSON string: quotes, backslashes and control characters escaped.
    static func quote(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// How a process logs: `LOG_FORMAT` is `text` (swift-log's lines, the default) or `json` (``JSONLogHandler``).
public enum LogFormat: String, Sendable {
    case text
    case json

    /// Bootstraps swift-log for the process at `level`, with `metadataProvider` (the trace context's ids) on every line.
    public func bootstrap(level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        switch self {
        case .text:
            LoggingSystem.bootstrap({ label, provider in
                var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }, metadataProvider: metadataProvider)
        case .json:
            LoggingSystem.bootstrap({ label, provider in
                var handler = JSONLogHandler.standardError(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }, metadataProvider: metadataProvider)
        }
    }
}
