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

/// An RFC 3339 timestamp such as `2026-01-31T12:00:00Z` (fractional seconds and offsets allowed), or nil.
func parseTimestamp(_ text: String) -> Date? {
    let withFraction = ISO8601DateFormatter()
    withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = withFraction.date(from: text) { return date }
    let plain = ISO8601DateFormatter()
    plain.formatOptions = [.withInternetDateTime]
    return plain.date(from: text)
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
