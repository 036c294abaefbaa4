/// A JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1): the subset the API's document needs. The same value is
/// written into the served document and applied by ``RequestValidator`` to request bodies and parameters, so what
/// the document states about a request is what the server checks.
struct Schema: Sendable {
    indirect enum Kind: Sendable {
        /// An object with these properties; `closed` refuses any other (`additionalProperties: false`).
        case object([Property], closed: Bool)
        /// Any JSON object (a job's `args`, `meta`); with `noNUL`, no string or key anywhere in it may hold U+0000,
        /// which PostgreSQL's jsonb cannot store.
        case anyObject(noNUL: Bool)
        /// An object whose values all follow one schema (`additionalProperties: schema`).
        case dictionary(Schema)
        case string(StringRules)
        case integer(IntegerRules)
        case number
        case boolean
        case array(Schema)
        /// Exactly one of these (`oneOf`).
        case oneOf([Schema])
        /// Any JSON value.
        case any
    }

    var kind: Kind
    /// The name under `#/components/schemas`: a named schema is written once there and referred to by `$ref`.
    var name: String?
    /// Also `null` (`type: [T, "null"]`). In a request, null means the same as leaving the field out.
    var nullable = false
    var description: String?
    var defaultValue: JSONValue?
    var examples: [JSONValue] = []

    init(_ kind: Kind, name: String? = nil, description: String? = nil) {
        self.kind = kind
        self.name = name
        self.description = description
    }
}

/// A property of an object schema.
struct Property: Sendable {
    let name: String
    let schema: Schema
    let required: Bool

    init(_ name: String, _ schema: Schema, required: Bool = false) {
        self.name = name
        self.schema = schema
        self.required = required
    }
}

/// What a string must be.
struct StringRules: Sendable {
    var minLength: Int?
    /// In Unicode scalars, as JSON Schema and PostgreSQL's `length()` count (a letter and its accent are two).
    var maxLength: Int?
    /// `date-time` (RFC 3339), `date` (YYYY-MM-DD) or `uuid`; checked by the validator, not only stated.
    var format: String?
    /// The values allowed (`enum`).
    var allowed: [String]?
    /// The one value allowed (`const`).
    var constant: String?
    /// No control characters (Unicode category Cc, U+0000–U+001F and U+007F–U+009F), written as a `pattern`.
    var printable = false
    /// A string that holds a document of this media type (`contentMediaType`), such as JSON in an event's data.
    var contentMediaType: String?
    /// The schema of that document (`contentSchema`).
    var contentSchema: Schema?

    /// The `pattern` a printable string matches.
    static let printablePattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
}

/// What an integer must be.
struct IntegerRules: Sendable {
    var minimum: Int64
    var maximum: Int64
    /// `int32` or `int64`.
    var format: String
}

extension Schema {
    static func object(_ properties: [Property], closed: Bool = true, name: String? = nil, description: String? = nil) -> Schema {
        Schema(.object(properties, closed: closed), name: name, description: description)
    }

    static func string(
        minLength: Int? = nil, maxLength: Int? = nil, format: String? = nil, printable: Bool = false, description: String? = nil
    ) -> Schema {
        Schema(.string(StringRules(minLength: minLength, maxLength: maxLength, format: format, printable: printable)), description: description)
    }

    /// A string of one of `values`.
    static func oneOf(_ values: [String], name: String? = nil, description: String? = nil) -> Schema {
        Schema(.string(StringRules(allowed: values)), name: name, description: description)
    }

    /// The string `value` and nothing else.
    static func constant(_ value: String) -> Schema { Schema(.string(StringRules(constant: value))) }

    /// A string holding JSON that follows `schema`.
    static func json(_ schema: Schema) -> Schema {
        Schema(.string(StringRules(contentMediaType: "application/json", contentSchema: schema)))
    }

    static func int64(_ range: ClosedRange<Int64> = Int64.min...Int64.max, description: String? = nil) -> Schema {
        Schema(.integer(IntegerRules(minimum: range.lowerBound, maximum: range.upperBound, format: "int64")), description: description)
    }

    static func int32(_ range: ClosedRange<Int64> = Int64(Int32.min)...Int64(Int32.max), description: String? = nil) -> Schema {
        Schema(.integer(IntegerRules(minimum: range.lowerBound, maximum: range.upperBound, format: "int32")), description: description)
    }

    static func array(_ items: Schema, description: String? = nil) -> Schema { Schema(.array(items), description: description) }

    static var number: Schema { Schema(.number) }

    /// A timestamp as the API writes it (RFC 3339, UTC, milliseconds).
    static var dateTime: Schema { .string(format: "date-time") }

    /// This schema, also allowing null.
    var orNull: Schema {
        var copy = self
        copy.nullable = true
        return copy
    }

    func described(_ text: String) -> Schema {
        var copy = self
        copy.description = text
        return copy
    }

    func withDefault(_ value: JSONValue) -> Schema {
        var copy = self
        copy.defaultValue = value
        return copy
    }

    func withExamples(_ values: JSONValue...) -> Schema {
        var copy = self
        copy.examples = values
        return copy
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int64) { self = .int(value) }
}
