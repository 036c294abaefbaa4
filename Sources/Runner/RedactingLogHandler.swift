import Logging

/// Another handler's lines without some metadata keys (values that may be secrets).
struct RedactingLogHandler: LogHandler {
    var base: any LogHandler
    let dropping: Set<String>

    init(_ base: any LogHandler, dropping: Set<String>) {
        self.base = base
        self.dropping = dropping
    }

    var logLevel: Logger.Level {
        get { self.base.logLevel }
        set { self.base.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { self.base.metadata }
        set { self.base.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.base[metadataKey: key] }
        set { self.base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if let metadata = event.metadata, metadata.keys.contains(where: self.dropping.contains) {
            event.metadata = metadata.filter { !self.dropping.contains($0.key) }
        }
        self.base.log(event: event)
    }
}
