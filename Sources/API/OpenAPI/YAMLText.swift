/// Writes a ``DocumentNode`` as YAML in block style only: every string scalar is double-quoted with JSON-style escapes,
/// so no value can end early at a comma or a colon, nor be read as a number, a boolean or null. Keys are plain only
/// when they are plain words (`paths`, `$ref`, `/jobs`); anything else (`"200"`, `"/jobs/{id}"`) is quoted too.
enum YAMLText {
    static func render(_ node: DocumentNode) -> String {
        var out = ""
        switch node {
        case .map(let entries) where !entries.isEmpty:
            Self.map(entries, indent: 0, firstPrefix: "", into: &out)
        default:
            out += Self.scalar(node) + "\n"
        }
        return out
    }

    /// The entries of a map, one per line at `indent`; the first line starts with `firstPrefix` instead of the
    /// indentation (`- ` when the map is an item of a list).
    private static func map(_ entries: [DocumentNode.Entry], indent: Int, firstPrefix: String, into out: inout String) {
        let padding = String(repeating: " ", count: indent)
        for (index, entry) in entries.enumerated() {
            out += (index == 0 ? firstPrefix : padding) + Self.key(entry.key) + ":"
            Self.value(entry.value, indent: indent, into: &out)
        }
    }

    /// A value after `key:` on the same line: a scalar there, a collection on the lines below.
    private static func value(_ node: DocumentNode, indent: Int, into out: inout String) {
        switch node {
        case .map(let entries) where !entries.isEmpty:
            out += "\n"
            Self.map(entries, indent: indent + 2, firstPrefix: String(repeating: " ", count: indent + 2), into: &out)
        case .list(let items) where !items.isEmpty:
            out += "\n"
            Self.list(items, indent: indent + 2, into: &out)
        default:
            out += " " + Self.scalar(node) + "\n"
        }
    }

    private static func list(_ items: [DocumentNode], indent: Int, into out: inout String) {
        let dash = String(repeating: " ", count: indent) + "- "
        for item in items {
            switch item {
            case .map(let entries) where !entries.isEmpty:
                Self.map(entries, indent: indent + 2, firstPrefix: dash, into: &out)
            case .list(let inner) where !inner.isEmpty:
                out += String(repeating: " ", count: indent) + "-\n"
                Self.list(inner, indent: indent + 2, into: &out)
            default:
                out += dash + Self.scalar(item) + "\n"
            }
        }
    }

    /// A scalar, or an empty collection as `{}` or `[]`.
    private static func scalar(_ node: DocumentNode) -> String {
        switch node {
        case .string(let string): return Self.quote(string)
        case .integer(let value): return String(value)
        case .number(let value): return value.isFinite ? "\(value)" : ".nan"
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .list: return "[]"
        case .map: return "{}"
        }
    }

    /// Words that YAML 1.1 readers take for booleans or null when plain.
    private static let reserved: Set<String> = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"]

    private static func key(_ key: String) -> String {
        func isLetter(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) }
        guard let first = key.unicodeScalars.first, isLetter(first) || "$/_".unicodeScalars.contains(first),
            key.unicodeScalars.allSatisfy({ isLetter($0) || ("0"..."9").contains($0) || "$/_.-".unicodeScalars.contains($0) }),
            !Self.reserved.contains(key.lowercased())
        else { return Self.quote(key) }
        return key
    }

    /// A double-quoted YAML scalar; what YAML cannot hold as it is (control characters, line breaks, U+FEFF) is
    /// escaped as JSON would.
    static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || [0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF].contains(scalar.value):
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
