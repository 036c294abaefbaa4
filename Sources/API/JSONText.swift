import Foundation
import Shop
import Skipper

/// JSON text written by hand for the API's resources: cheaper than Codable on the hot path (a submit renders one
/// job), and the job's jsonb columns (args, errors, result, meta) are spliced in as PostgreSQL returned them.
enum JSONText {
    /// RFC 3339 in UTC with milliseconds, e.g. `"2026-11-23T10:31:09.123Z"`, or `null`.
    static func time(_ date: Date?) -> String {
        guard let date else { return "null" }
        return "\"" + date.formatted(Self.timeStyle) + "\""
    }

    private static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)

    /// A JSON string literal.
    static func quote(_ string: String) -> String {
        var out = "\""
        out.reserveCapacity(string.utf8.count + 2)
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension JobRecord {
    /// Where the job's artifact downloads from, when it has one.
    var downloadURL: String? { self.hasArtifact ? "/downloads/\(self.id).csv" : nil }

    /// The REST resource as JSON text.
    var json: String {
        var out = "{"
        out.reserveCapacity(self.jsonBytes)
        out += #""job_id":\#(self.id),"kind":"# + JSONText.quote(self.kind)
        out += #","queue":"# + JSONText.quote(self.queue) + #","status":""# + self.status.rawValue + "\""
        out += #","progress":\#(self.progress),"processed":\#(self.processed),"total":"# + (self.total.map { "\($0)" } ?? "null")
        out += #","attempt":\#(self.attempt),"max_attempts":\#(self.maxAttempts),"priority":\#(self.priority)"#
        out += #","args":"# + self.args + #","unique_key":"# + (self.uniqueKey.map(JSONText.quote) ?? "null")
        out += #","run_at":"# + JSONText.time(self.runAt) + #","created_at":"# + JSONText.time(self.createdAt)
        out += #","started_at":"# + JSONText.time(self.startedAt) + #","finished_at":"# + JSONText.time(self.finishedAt)
        out += #","cancel_requested_at":"# + JSONText.time(self.cancelRequestedAt)
        out += #","timeout_ms":"# + (self.timeoutMilliseconds.map { String($0) } ?? "null")
        out += #","snoozed":"# + String(self.snoozed) + #","runner_id":"# + (self.runnerID.map(JSONText.quote) ?? "null")
        out += #","errors":"# + self.errors + #","result":"# + (self.result ?? "null") + #","meta":"# + self.meta
        out += #","download_url":"# + (self.downloadURL.map(JSONText.quote) ?? "null") + "}"
        return out
    }
}

extension Order {
    /// The REST resource as JSON text.
    var json: String {
        #"{"order_id":"\#(self.id.uuidString.lowercased())","product_id":\#(self.productID),"buyer_id":"#
            + JSONText.quote(self.buyerID)
            + #","quantity":\#(self.quantity),"total_amount_cents":\#(self.totalAmountCents),"status":"\#(self.status)""#
            + #","created_at":"# + JSONText.time(self.createdAt) + #","paid_at":"# + JSONText.time(self.paidAt) + "}"
    }
}

extension SalesReport.Row {
    /// The report as JSON text; `by_category` is the jsonb column as stored.
    var json: String {
        #"{"total_revenue_cents":\#(self.totalRevenueCents),"paid_orders":\#(self.paidOrders),"products_sold":\#(self.productsSold),"#
            + #""unique_customers":\#(self.uniqueCustomers),"by_category":\#(self.byCategory),"updated_at":"# + JSONText.time(self.updatedAt) + "}"
    }
}
