import Foundation
import Skipper

/// The shop's job kinds and their SQL.
public enum Shop {
    /// The shop's handlers, registered by skipper-runner. `BATCH_SIZE` sets the settlement's slice size.
    public static var handlers: [AnyJobHandler] {
        let batchSize = ProcessInfo.processInfo.environment["BATCH_SIZE"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil } ?? 10_000
        return [AnyJobHandler(ReportRefresh()), AnyJobHandler(Settlement(defaultBatchSize: batchSize))]
    }
}
