/// A migration file's SQL, split into statements that can be sent one by one (the extended query protocol takes one
/// statement at a time): semicolons end statements only outside quotes, comments and dollar-quoted bodies.
enum SQLScript {
    /// The statements of `script`, each without its terminating semicolon; segments holding only comments and
    /// whitespace are left out.
    static func statements(_ script: String) -> [String] {
        let text = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var meaningful = false
        var i = 0
        func flush() {
            if meaningful {
                statements.append(String(current).trimmingWhitespace())
            }
            current = String.UnicodeScalarView()
            meaningful = false
        }
        /// Copies text[i..<end] into the current statement.
        func copy(to end: Int) {
            current.append(contentsOf: text[i..<min(end, text.count)])
            i = min(end, text.count)
        }
        while i < text.count {
            let c = text[i]
            let next: Unicode.Scalar? = i + 1 < text.count ? text[i + 1] : nil
            switch c {
            case "-" where next == "-":
                // A line comment: to the end of the line.
                var end = i
                while end < text.count, text[end] != "\n" { end += 1 }
                copy(to: end)
            case "/" where next == "*":
                // A block comment; PostgreSQL's nest.
                var depth = 0
                var end = i
                repeat {
                    if end + 1 < text.count, text[end] == "/", text[end + 1] == "*" {
                        depth += 1
                        end += 2
                    } else if end + 1 < text.count, text[end] == "*", text[end + 1] == "/" {
                        depth -= 1
                        end += 2
                    } else {
                        end += 1
                    }
                } while depth > 0 && end < text.count
                copy(to: end)
            case "'", "\"":
                // A string or a quoted identifier: a doubled quote stays inside; an E'' string also escapes with \.
                let escapes = c == "'" && i > 0 && (text[i - 1] == "E" || text[i - 1] == "e")
                    && (i < 2 || !Self.isIdentifierPart(text[i - 2]))
                var end = i + 1
                while end < text.count {
                    if escapes, text[end] == "\\" {
                        end += 2
                        continue
                    }
                    if text[end] == c {
                        if end + 1 < text.count, text[end + 1] == c {
                            end += 2
                            continue
                        }
                        end += 1
                        break
                    }
                    end += 1
                }
                meaningful = true
                copy(to: end)
            case "$":
                // A dollar-quoted body ($$ or $tag$), unless this is a parameter ($1) or part of an identifier.
                if let tagEnd = Self.dollarTagEnd(text, from: i), i == 0 || !Self.isIdentifierPart(text[i - 1]) {
                    let tag = Array(text[i...tagEnd])
                    var end = tagEnd + 1
                    while end < text.count {
                        if text[end] == "$", end + tag.count <= text.count, Array(text[end..<(end + tag.count)]) == tag {
                            end += tag.count
                            break
                        }
                        end += 1
                    }
                    meaningful = true
                    copy(to: end)
                } else {
                    meaningful = true
                    copy(to: i + 1)
                }
            case ";":
                i += 1
                flush()
            default:
                if !c.properties.isWhitespace { meaningful = true }
                copy(to: i + 1)
            }
        }
        flush()
        return statements
    }

    /// Where a dollar-quote tag starting at `start` ends (the index of its closing `$`): `$$` or `$name$` with a name
    /// that does not start with a digit.
    private static func dollarTagEnd(_ text: [Unicode.Scalar], from start: Int) -> Int? {
        var end = start + 1
        while end < text.count, text[end] != "$" {
            guard Self.isIdentifierPart(text[end]), !(end == start + 1 && ("0"..."9").contains(text[end])) else { return nil }
            end += 1
        }
        return end < text.count ? end : nil
    }

    private static func isIdentifierPart(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || ("0"..."9").contains(c)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self).unicodeScalars
        while let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
