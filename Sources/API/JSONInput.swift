import Foundation
import Hummingbird
import NIOCore

/// A JSON value as a client sent it, so that each field's type can be checked and named in the error.
enum JSONValue: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        // Most likely first (objects, strings, integers): each failed attempt costs a thrown DecodingError.
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if container.decodeNil() {
            self = .null
        } else {
            self = .array(try container.decode([JSONValue].self))
        }
    }

    /// The JSON type's name, for error messages.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension JSONValue {
    /// The request body (at most 1 MiB) as the fields of a JSON object: 413 when larger, 400 `INVALID_JSON` when it
    /// is empty, not JSON, or not an object.
    static func object(from request: Request) async throws -> [String: JSONValue] {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: APILimits.maxBody)
        } catch is NIOTooManyBytesError {
            throw APIError(status: .contentTooLarge, code: "PAYLOAD_TOO_LARGE", message: "the body is larger than 1 MiB")
        }
        guard buffer.readableBytes > 0 else { throw APIError.invalidJSON("the body is empty; send a JSON object") }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(buffer: buffer))
        } catch {
            throw APIError.invalidJSON("the body is not valid JSON")
        }
        guard case .object(let fields) = value else {
            throw APIError.invalidJSON("the body must be a JSON object, not \(value.typeName)")
        }
        return fields
    }
}

/// An RFC 3339 timestamp such as `2026-01-31T12:00:00Z` or `2026-01-31T13:00:00.25+01:00`, read strictly, or nil:
/// a day that exists, hours 0-23, minutes and seconds 0-59, an offset within ±23:59, at most 9 fractional digits
/// (PostgreSQL keeps microseconds). Foundation's parser rolled impossible values over (February 30 became March 2,
/// 24:00 the next day, +99:00 was read as +09:00), so a job was scheduled for another time than sent.
func parseTimestamp(_ text: String) -> Date? {
    let b = Array(text.utf8)
    func digits(_ at: Int, _ count: Int) -> Int? {
        guard at + count <= b.count else { return nil }
        var value = 0
        for byte in b[at..<(at + count)] {
            guard byte >= 48, byte <= 57 else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        return value
    }
    guard b.count >= 20, let year = digits(0, 4), b[4] == UInt8(ascii: "-"), let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
        let day = digits(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"), let hour = digits(11, 2),
        b[13] == UInt8(ascii: ":"), let minute = digits(14, 2), b[16] == UInt8(ascii: ":"), let second = digits(17, 2)
    else { return nil }
    var i = 19
    var fraction = 0.0
    if i < b.count, b[i] == UInt8(ascii: ".") {
        i += 1
        var scale = 0.1
        let start = i
        while i < b.count, b[i] >= 48, b[i] <= 57 {
            fraction += Double(b[i] - 48) * scale
            scale /= 10
            i += 1
        }
        guard i > start, i - start <= 9 else { return nil }
    }
    var offset = 0
    guard i < b.count else { return nil }
    if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
        i += 1
    } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), let oh = digits(i + 1, 2), i + 3 < b.count,
        b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2), oh <= 23, om <= 59
    {
        offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "-") ? -1 : 1)
        i += 6
    } else {
        return nil
    }
    guard i == b.count, (1...12).contains(month), hour <= 23, minute <= 59, second <= 59 else { return nil }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    guard (1...days).contains(day) else { return nil }
    // Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's days_from_civil).
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let epochDays = era * 146_097 + doe - 719_468
    let seconds = epochDays * 86_400 + hour * 3600 + minute * 60 + second - offset
    return Date(timeIntervalSince1970: Double(seconds) + fraction)
}

extension JSONValue {
    /// Whether a string or key anywhere in the value holds U+0000.
    var containsNUL: Bool {
        switch self {
        case .string(let value): return value.utf8.contains(0)
        case .array(let values): return values.contains(where: \.containsNUL)
        case .object(let fields): return fields.contains { $0.key.utf8.contains(0) || $0.value.containsNUL }
        default: return false
        }
    }

    /// Compact JSON text of the value.
    var jsonText: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .double(let value): return value.isFinite ? "\(value)" : "null"
        case .string(let value): return JSONText.quote(value)
        case .array(let values): return "[" + values.map(\.jsonText).joined(separator: ",") + "]"
        case .object(let fields):
            return "{" + fields.keys.sorted().map { JSONText.quote($0) + ":" + fields[$0]!.jsonText }.joined(separator: ",") + "}"
        }
    }
}
