import Foundation
import Skipper

/// The shop's job kinds and their SQL.
public enum Shop {
    /// The shop's handlers, registered by skipper-runner; `batchSize` is the settlement's default slice
    /// (`BATCH_SIZE`, ``RunnerConfig/batchSize``).
    public static func handlers(batchSize: Int = 10_000) -> [AnyJobHandler] {
        [
            AnyJobHandler(ReportRefresh()), AnyJobHandler(Settlement(defaultBatchSize: batchSize)),
            AnyJobHandler(NightlySettlement(defaultBatchSize: batchSize)),
        ]
    }
}
