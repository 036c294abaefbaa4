import Foundation

/// A request's parameters and body after ``RequestValidator`` checked them against the endpoint's schemas: handlers
/// read the values without checking them again. A value is absent when it was left out (or null).
struct Input: Sendable {
    /// Path and query parameters.
    var parameters = Values()
    /// The body's fields.
    var body = Values()
    /// The body object as sent, for a body handed on whole (the settlement's arguments).
    var bodyObject: [String: JSONValue] = [:]

    /// Checked values by name.
    struct Values: Sendable {
        fileprivate(set) var values: [String: Value] = [:]

        subscript(name: String) -> Value? {
            get { self.values[name] }
            set { self.values[name] = newValue }
        }

        func string(_ name: String) -> String? {
            guard case .string(let value) = self.values[name] else { return nil }
            return value
        }

        func integer(_ name: String) -> Int64? {
            guard case .integer(let value) = self.values[name] else { return nil }
            return value
        }

        func date(_ name: String) -> Date? {
            guard case .date(let value) = self.values[name] else { return nil }
            return value
        }

        func uuid(_ name: String) -> UUID? {
            guard case .uuid(let value) = self.values[name] else { return nil }
            return value
        }

        /// An object field as compact JSON text.
        func json(_ name: String) -> String? {
            guard case .json(let value) = self.values[name] else { return nil }
            return value.jsonText
        }
    }

    /// A checked value, in the type its schema gives it.
    enum Value: Sendable, Equatable {
        case string(String)
        case integer(Int64)
        case date(Date)
        case uuid(UUID)
        /// An object, array, number or boolean, as sent.
        case json(JSONValue)
    }
}
