import Skipper

/// Checks a job's arguments with its kind's handler when this build has it (``AnyJobHandler/validate``), so a typo
/// or an out-of-range value is a 422 `INVALID_ARGS` naming the field at submit time, rather than a FAILED job later.
/// Every route that submits a job goes through it: one check, one error code.
struct ArgumentCheck: Sendable {
    let handlers: [String: AnyJobHandler]

    /// Throws `INVALID_ARGS`, naming the field as `prefix.field` (`args.ms`, or `to` for a body that is the args).
    func check(kind: String, args: String, prefix: String = "args") throws {
        guard let handler = self.handlers[kind] else { return }
        do {
            try handler.validate(args)
        } catch let error as ArgumentsError {
            let field = [prefix, error.field].filter { !$0.isEmpty }.joined(separator: ".")
            let message = field.isEmpty ? error.message : "\(field): \(error.message)"
            throw APIError(status: .unprocessableContent, code: "INVALID_ARGS", message: message)
        }
    }
}
