import PostgresNIO

/// A readable error message: the server's own message for PostgreSQL errors (PSQLError hides it by default).
public func describe(_ error: any Error) -> String {
    if let error = error as? PostgresTransactionError {
        // What failed inside the transaction, or its BEGIN/COMMIT/ROLLBACK.
        if let inner = error.closureError ?? error.beginError ?? error.commitError { return describe(inner) }
    }
    if let error = error as? PSQLError {
        if let message = error.serverInfo?[.message] {
            // PgBouncer's answer to the session settings a direct connection sends.
            let hint = message.hasPrefix("unsupported startup parameter")
                ? "; is DATABASE_URL a PgBouncer? Then set DB_POOLER=pgbouncer" : ""
            return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))\(hint)"
        }
        return "database error: \(error.code)"
    }
    return "\(error)"
}
