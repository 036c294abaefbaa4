/// Everything skipper-migrate can refuse or fail at, each printed as one line on stderr.
enum MigrateError: Error, CustomStringConvertible {
    case connection(url: String, reason: String)
    case source(String)
    case usage(String)
    case dirty(version: Int64)
    case missingFile(version: Int64, folder: String)
    case failed(file: String, line: Int?, column: Int?, failure: SQLFailure, standsAt: Int64?, dirtyVersion: Int64)
    case database(String)

    var description: String {
        switch self {
        case .connection(let url, let reason):
            return "cannot connect to \(url): \(reason)"
        case .source(let message), .usage(let message), .database(let message):
            return message
        case .dirty(let version):
            return "database is dirty at version \(version): a migration failed. Check the schema, then run "
                + "'skipper-migrate force V' with the version it really is at, and try again"
        case .missingFile(let version, let folder):
            return "database is at version \(version), but \(folder) has no migration with that version"
        case .failed(let file, let line, let column, let failure, let standsAt, let dirtyVersion):
            var location = file
            if let line, let column { location += ":\(line):\(column)" }
            var text = "\(location): \(failure.message)"
            if let state = failure.sqlState { text += " (SQLSTATE \(state))" }
            if let detail = failure.detail { text += "; \(detail)" }
            if let hint = failure.hint { text += "; hint: \(hint)" }
            let force = standsAt.map(String.init) ?? "0"
            text += ". Rolled back; version \(dirtyVersion) marked dirty. Fix the file, then run "
                + "'skipper-migrate force \(force)' and try again"
            return text
        }
    }
}
