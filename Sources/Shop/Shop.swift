import Skipper

/// The shop's job kinds and their SQL (settlement, report.refresh) live here.
public enum Shop {
    /// The migration that creates the shop's tables.
    public static let migrationVersion: Int64 = 2
}
