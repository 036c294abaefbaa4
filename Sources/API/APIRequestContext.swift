import Hummingbird
import Logging
import NIOCore

/// The request context of every route: Hummingbird's core storage and the request id, which the request-id
/// middleware sets from `X-Request-ID` (or generates) before any route runs.
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var requestID = ""

    init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// Bodies larger than this are refused with 413.
    var maxUploadSize: Int { APILimits.maxBody }
}

enum APILimits {
    /// 1 MiB: the largest request body accepted.
    static let maxBody = 1 << 20
}
