/// How a ``Schema`` is written into the document.
extension Schema {
    /// The schema where it is used: a `$ref` to its component when it is named, else its definition.
    var reference: DocumentNode {
        guard let name = self.name else { return self.definition }
        precondition(!self.nullable, "a named schema is referred to as it is; name a nullable variant of its own")
        return .map(["$ref": .string("#/components/schemas/\(name)")])
    }

    /// The schema's own definition.
    var definition: DocumentNode {
        var entries: [DocumentNode.Entry] = []
        func add(_ key: String, _ value: DocumentNode?) {
            if let value { entries.append(.init(key: key, value: value)) }
        }
        func type(_ name: String) {
            add("type", self.nullable ? .strings([name, "null"]) : .string(name))
        }
        switch self.kind {
        case .object(let properties, let closed):
            type("object")
            add("description", self.description.map(DocumentNode.string))
            if !properties.isEmpty {
                add("properties", .map(properties.map { .init(key: $0.name, value: $0.schema.reference) }))
            }
            let required = properties.filter(\.required).map(\.name)
            if !required.isEmpty { add("required", .strings(required)) }
            if closed { add("additionalProperties", .bool(false)) }
        case .anyObject:
            type("object")
            add("description", self.description.map(DocumentNode.string))
        case .dictionary(let values):
            type("object")
            add("description", self.description.map(DocumentNode.string))
            add("additionalProperties", values.reference)
        case .string(let rules):
            type("string")
            add("format", rules.format.map(DocumentNode.string))
            add("description", self.description.map(DocumentNode.string))
            add("minLength", rules.minLength.map { .integer(Int64($0)) })
            add("maxLength", rules.maxLength.map { .integer(Int64($0)) })
            if rules.printable { add("pattern", .string(StringRules.printablePattern)) }
            if let allowed = rules.allowed {
                add("enum", .list(allowed.map(DocumentNode.string) + (self.nullable ? [.null] : [])))
            }
            add("const", rules.constant.map(DocumentNode.string))
            add("contentMediaType", rules.contentMediaType.map(DocumentNode.string))
            add("contentSchema", rules.contentSchema?.reference)
        case .integer(let rules):
            type("integer")
            add("format", .string(rules.format))
            add("description", self.description.map(DocumentNode.string))
            add("minimum", .integer(rules.minimum))
            add("maximum", .integer(rules.maximum))
        case .number:
            type("number")
            add("description", self.description.map(DocumentNode.string))
        case .boolean:
            type("boolean")
            add("description", self.description.map(DocumentNode.string))
        case .array(let items):
            type("array")
            add("description", self.description.map(DocumentNode.string))
            add("items", items.reference)
        case .oneOf(let schemas):
            add("description", self.description.map(DocumentNode.string))
            add("oneOf", .list(schemas.map(\.reference)))
        case .any:
            add("description", self.description.map(DocumentNode.string))
        }
        add("default", self.defaultValue.map(DocumentNode.init))
        if !self.examples.isEmpty { add("examples", .list(self.examples.map(DocumentNode.init))) }
        return .map(entries)
    }

    /// The schemas nested in this one, itself included, in the order met.
    var nested: [Schema] {
        var found = [self]
        switch self.kind {
        case .object(let properties, _): found += properties.flatMap(\.schema.nested)
        case .dictionary(let values): found += values.nested
        case .array(let items): found += items.nested
        case .oneOf(let schemas): found += schemas.flatMap(\.nested)
        case .string(let rules): found += rules.contentSchema?.nested ?? []
        case .anyObject, .integer, .number, .boolean, .any: break
        }
        return found
    }
}
