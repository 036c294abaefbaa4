import CLibPQ
import Foundation
import Skipper

/// One libpq connection. Migration files go through `PQexec`, the simple-query protocol, which takes many
/// statements in one string exactly as `psql -f` does; everything else uses `PQexecParams` with bound values.
final class PQConnection {
    private let handle: OpaquePointer

    /// Connects, or throws the server's or libpq's reason in one line.
    init(_ config: DatabaseConfig) throws(MigrateError) {
        let conninfo = Self.conninfo(config)
        guard let handle = PQconnectdb(conninfo) else {
            throw .connection(url: config.url(), reason: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let reason = Self.oneLine(String(cString: PQerrorMessage(handle)))
            PQfinish(handle)
            throw .connection(url: config.url(), reason: reason)
        }
        // NOTICEs ("... does not exist, skipping") would interleave with our output; errors still come back as results.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        self.handle = handle
    }

    deinit { PQfinish(self.handle) }

    /// Runs a string of one or more statements with the simple-query protocol.
    func execScript(_ sql: String) throws(SQLFailure) {
        let result = PQexec(self.handle, sql)
        defer { PQclear(result) }
        try self.check(result)
    }

    /// Runs one statement with bound parameters and returns its rows as text (nil for NULL).
    @discardableResult
    func query(_ sql: String, _ parameters: [String?] = []) throws(SQLFailure) -> [[String?]] {
        var cStrings: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cStrings.forEach { free($0) } }
        let result = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { values in
                PQexecParams(self.handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
            }
        }
        defer { PQclear(result) }
        try self.check(result)
        var rows: [[String?]] = []
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        for row in 0..<rowCount {
            rows.append(
                (0..<columnCount).map { column in
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                }
            )
        }
        return rows
    }

    /// True while a transaction is open on this connection.
    var inTransaction: Bool {
        let status = PQtransactionStatus(self.handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    private func check(_ result: OpaquePointer?) throws(SQLFailure) {
        guard let result else {
            throw SQLFailure(message: Self.oneLine(String(cString: PQerrorMessage(self.handle))))
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return
        default:
            func field(_ code: Character) -> String? {
                guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
                return String(cString: value)
            }
            throw SQLFailure(
                message: field("M") ?? Self.oneLine(String(cString: PQresultErrorMessage(result))),
                sqlState: field("C"),
                detail: field("D"),
                hint: field("H"),
                position: field("P").flatMap { Int($0) }
            )
        }
    }

    /// libpq's key=value form, each value quoted, so no character in a password can change its meaning.
    static func conninfo(_ config: DatabaseConfig) -> String {
        func quoted(_ value: String) -> String {
            "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        var pairs = [
            ("host", config.host), ("port", String(config.port)), ("user", config.username),
            ("dbname", config.database), ("sslmode", config.tls.rawValue), ("connect_timeout", "5"),
            ("application_name", "skipper-migrate"),
        ]
        if let password = config.password { pairs.append(("password", password)) }
        return pairs.map { "\($0.0)=\(quoted($0.1))" }.joined(separator: " ")
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }
}

/// An error PostgreSQL reported for a statement, with the 1-based character position when it gave one.
struct SQLFailure: Error {
    var message: String
    var sqlState: String? = nil
    var detail: String? = nil
    var hint: String? = nil
    var position: Int? = nil
}
