import Foundation
import Hummingbird

/// Checks a request against its endpoint's parameters and body schema before the handler runs (a value left out
/// takes its schema's default, so the document's defaults are the server's), with the API's
/// errors: a path or query parameter that cannot be used is `400 INVALID_PARAMETER`, a body that is not a JSON object
/// `400 INVALID_JSON` (`413 PAYLOAD_TOO_LARGE` over 1 MiB), a field against its schema `422 INVALID_FIELD`; each
/// message names the parameter or field (`priority: must be between -32768 and 32767, not 40000`).
struct RequestValidator: Sendable {
    let endpoint: Endpoint
    /// The query parameters the endpoint takes; when it takes any, others are refused (a misspelt filter must not
    /// silently list everything).
    private let queryNames: Set<String>

    init(endpoint: Endpoint) {
        self.endpoint = endpoint
        self.queryNames = Set(endpoint.parameters.filter { $0.location == .query }.map(\.name))
    }

    func input(_ request: Request, context: APIRequestContext) async throws -> Input {
        var input = Input()
        input.parameters = try self.parameters(request, context: context)
        if let body = self.endpoint.body {
            let fields = try await JSONValue.object(from: request)
            input.bodyObject = fields
            guard case .object(let properties, let closed) = body.schema.kind else { preconditionFailure("a request body is an object") }
            switch body.checks {
            case .schema: input.body = try Self.object(fields, properties: properties, closed: closed, path: "")
            case .fieldNames: try Self.refuseUnknown(fields, properties: properties, path: "")
            }
        }
        return input
    }

    // MARK: - Parameters

    private func parameters(_ request: Request, context: APIRequestContext) throws -> Input.Values {
        let query = request.uri.queryParameters
        if !self.queryNames.isEmpty, let unknown = query.map({ String($0.key) }).sorted().first(where: { !self.queryNames.contains($0) }) {
            throw APIError.invalidParameter(unknown, "unknown parameter (expected: \(self.queryNames.sorted().joined(separator: ", ")))")
        }
        var values = Input.Values()
        for parameter in self.endpoint.parameters {
            let text: String?
            switch parameter.location {
            case .path:
                // Path segments arrive percent-encoded (a queue named "a b" is /queues/a%20b): the value is the decoded text.
                if let raw = context.parameters.get(parameter.name) {
                    guard let decoded = raw.removingPercentEncoding else {
                        throw APIError.invalidParameter(parameter.name, "is not percent-encoded UTF-8: '\(raw)'")
                    }
                    text = decoded
                } else {
                    text = nil
                }
            case .query: text = query.get(parameter.name)
            case .header: continue
            }
            guard let text else {
                if parameter.required { throw APIError.invalidParameter(parameter.name, "is required") }
                // Left out: the schema's default, if it has one, is the value.
                if let value = parameter.schema.defaultValue {
                    values[parameter.name] = try Self.value(value, parameter.schema, field: parameter.name)
                }
                continue
            }
            values[parameter.name] = try Self.parameter(text, parameter)
        }
        return values
    }

    /// A parameter's text as its schema's type, or 400 naming it.
    static func parameter(_ text: String, _ parameter: Endpoint.Parameter) throws -> Input.Value {
        func invalid(_ message: String) -> APIError {
            APIError.invalidParameter(parameter.name, parameter.expected.map { "\($0), not '\(text)'" } ?? message)
        }
        switch parameter.schema.kind {
        case .integer(let rules):
            guard let value = Int64(text), (rules.minimum...rules.maximum).contains(value) else {
                throw invalid("must be an integer from \(rules.minimum) to \(rules.maximum), not '\(text)'")
            }
            return .integer(value)
        case .string(let rules):
            if let allowed = rules.allowed, !allowed.contains(text) {
                throw invalid("must be one of \(allowed.joined(separator: ", ")), not '\(text)'")
            }
            if let problem = Self.lengthProblem(text, rules, range: true) { throw invalid(problem) }
            if rules.printable, Self.hasControlCharacters(text) { throw invalid("must not contain control characters") }
            return try Self.formatted(text, rules.format) { throw invalid($0) }
        default:
            return .string(text)
        }
    }

    // MARK: - Body

    /// The fields of an object against its properties: unknown fields first (when closed), then each property in order.
    static func object(_ fields: [String: JSONValue], properties: [Property], closed: Bool, path: String) throws -> Input.Values {
        if closed { try Self.refuseUnknown(fields, properties: properties, path: path) }
        var values = Input.Values()
        for property in properties {
            let field = path + property.name
            guard let value = fields[property.name], value != .null else {
                if property.required { throw APIError.invalidField(field, "is required") }
                if fields[property.name] == .null, !property.schema.nullable {
                    throw APIError.invalidField(field, "must not be null")
                }
                // Left out (or null): the schema's default, if it has one, is the value.
                if let value = property.schema.defaultValue { values[property.name] = try Self.value(value, property.schema, field: field) }
                continue
            }
            values[property.name] = try Self.value(value, property.schema, field: field)
        }
        return values
    }

    /// Refuses fields the properties do not name: a misspelt option must not be silently ignored.
    static func refuseUnknown(_ fields: [String: JSONValue], properties: [Property], path: String) throws {
        let names = Set(properties.map(\.name))
        if let unknown = fields.keys.sorted().first(where: { !names.contains($0) }) {
            throw APIError.invalidField(path + unknown, "unknown field (expected one of: \(names.sorted().joined(separator: ", ")))")
        }
    }

    /// One value against its schema, or 422 naming `field`.
    static func value(_ value: JSONValue, _ schema: Schema, field: String) throws -> Input.Value {
        func invalid(_ message: String) -> APIError { APIError.invalidField(field, message) }
        switch schema.kind {
        case .string(let rules):
            guard case .string(let string) = value else { throw invalid("must be a string, not \(value.typeName)") }
            if let problem = Self.lengthProblem(string, rules, range: false) { throw invalid(problem) }
            if rules.printable, Self.hasControlCharacters(string) { throw invalid("must not contain control characters") }
            if let allowed = rules.allowed, !allowed.contains(string) {
                throw invalid("must be one of \(allowed.joined(separator: ", ")), not '\(string)'")
            }
            if let constant = rules.constant, string != constant { throw invalid("must be '\(constant)', not '\(string)'") }
            return try Self.formatted(string, rules.format) { throw invalid($0) }
        case .integer(let rules):
            let number: Int64
            switch value {
            case .int(let int): number = int
            case .double(let double) where double.rounded() == double && abs(double) < 9.2e18: number = Int64(double)
            case .double: throw invalid("must be an integer between \(rules.minimum) and \(rules.maximum)")
            default: throw invalid("must be an integer, not \(value.typeName)")
            }
            guard (rules.minimum...rules.maximum).contains(number) else {
                throw invalid("must be between \(rules.minimum) and \(rules.maximum), not \(number)")
            }
            return .integer(number)
        case .anyObject(let noNUL):
            guard case .object = value else { throw invalid("must be a JSON object, not \(value.typeName)") }
            if noNUL, value.containsNUL { throw invalid("must not contain \\u0000, which PostgreSQL's jsonb cannot store") }
            return .json(value)
        case .object(let properties, let closed):
            guard case .object(let fields) = value else { throw invalid("must be a JSON object, not \(value.typeName)") }
            _ = try Self.object(fields, properties: properties, closed: closed, path: field + ".")
            return .json(value)
        case .dictionary(let schema):
            guard case .object(let fields) = value else { throw invalid("must be a JSON object, not \(value.typeName)") }
            for key in fields.keys.sorted() { _ = try Self.value(fields[key]!, schema, field: field + "." + key) }
            return .json(value)
        case .array(let items):
            guard case .array(let elements) = value else { throw invalid("must be an array, not \(value.typeName)") }
            for (index, element) in elements.enumerated() { _ = try Self.value(element, items, field: "\(field)[\(index)]") }
            return .json(value)
        case .number:
            switch value {
            case .int, .double: return .json(value)
            default: throw invalid("must be a number, not \(value.typeName)")
            }
        case .boolean:
            guard case .bool = value else { throw invalid("must be true or false, not \(value.typeName)") }
            return .json(value)
        case .oneOf(let schemas):
            for schema in schemas {
                if let checked = try? Self.value(value, schema, field: field) { return checked }
            }
            throw invalid("matches none of its forms")
        case .any:
            return .json(value)
        }
    }

    // MARK: - Strings

    /// What is wrong with a string's length (in Unicode scalars, as PostgreSQL counts characters), or nil.
    /// `range`: say "1 to 128 characters" as parameters do, rather than the bound that was crossed.
    private static func lengthProblem(_ string: String, _ rules: StringRules, range: Bool) -> String? {
        let count = string.unicodeScalars.count
        let tooShort = rules.minLength.map { count < $0 } ?? false
        let tooLong = rules.maxLength.map { count > $0 } ?? false
        guard tooShort || tooLong else { return nil }
        if range, let min = rules.minLength, let max = rules.maxLength { return "must be \(min) to \(max) characters" }
        if tooShort { return rules.minLength == 1 ? "must not be empty" : "must be at least \(rules.minLength!) characters" }
        return "must be at most \(rules.maxLength!) characters"
    }

    private static func hasControlCharacters(_ string: String) -> Bool {
        string.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// The string as its format's type: `date-time` a Date, `uuid` a UUID, `date` checked and kept as text.
    private static func formatted(_ string: String, _ format: String?, invalid: (String) throws -> Never) throws -> Input.Value {
        switch format {
        case "date-time":
            guard let date = parseTimestamp(string) else {
                try invalid("must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z, not '\(string)'")
            }
            // Beyond PostgreSQL's range a time was a 500; before the Gregorian calendar's start, Foundation (Julian)
            // and PostgreSQL (proleptic Gregorian) name different days, so it was stored other than sent.
            guard timestampRange.contains(date) else {
                try invalid("must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, not '\(string)'")
            }
            return .date(date)
        case "uuid":
            guard let uuid = UUID(uuidString: string) else { try invalid("must be a UUID, not '\(string)'") }
            return .uuid(uuid)
        case "date":
            guard isFullDate(string) else { try invalid("must be a date such as 2025-01-01, not '\(string)'") }
            return .string(string)
        default:
            return .string(string)
        }
    }
}

/// The timestamps the API accepts: the Unix epoch to the end of year 9999.
let timestampRange = Date(timeIntervalSince1970: 0) ..< Date(timeIntervalSince1970: 253_402_300_800)

/// Whether `text` is an RFC 3339 full-date (`2025-01-31`) of a day that exists.
func isFullDate(_ text: String) -> Bool {
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
        parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
        let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2])
    else { return false }
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    return DateComponents(calendar: calendar, year: year, month: month, day: day).isValidDate
}
