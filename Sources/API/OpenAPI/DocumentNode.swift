/// An ordered JSON value: the OpenAPI document as a tree, before it is written out as YAML. Maps keep their keys in
/// the order they were built, so the served text is stable byte for byte.
indirect enum DocumentNode: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case number(Double)
    case bool(Bool)
    case null
    case list([DocumentNode])
    case map([Entry])

    /// One key of a map and its value.
    struct Entry: Sendable, Equatable {
        let key: String
        let value: DocumentNode
    }

    /// A map from `(key, value)` pairs, dropping the pairs whose value is nil.
    static func map(_ pairs: KeyValuePairs<String, DocumentNode?>) -> DocumentNode {
        .map(pairs.compactMap { key, value in value.map { Entry(key: key, value: $0) } })
    }

    /// A list of strings.
    static func strings(_ values: [String]) -> DocumentNode { .list(values.map(DocumentNode.string)) }

    /// This node with the entries of `other` (a map) appended; for nodes that are maps.
    func merging(_ other: DocumentNode) -> DocumentNode {
        guard case .map(let entries) = self, case .map(let more) = other else { return self }
        return .map(entries + more)
    }
}

extension DocumentNode {
    /// The node from a JSON value (a default or an example in a schema).
    init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let bool): self = .bool(bool)
        case .int(let int): self = .integer(int)
        case .double(let double): self = .number(double)
        case .string(let string): self = .string(string)
        case .array(let values): self = .list(values.map(DocumentNode.init))
        case .object(let fields): self = .map(fields.keys.sorted().map { Entry(key: $0, value: DocumentNode(fields[$0]!)) })
        }
    }
}
