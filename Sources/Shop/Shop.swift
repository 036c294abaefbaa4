import Skipper

/// The shop's job kinds and their SQL.
public enum Shop {
    /// The shop's handlers, registered by skipper-runner.
    public static let handlers: [AnyJobHandler] = [AnyJobHandler(ReportRefresh())]
}
