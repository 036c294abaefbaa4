import Foundation
import Testing
import TestSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP request to a server a test started: status and body.
func http(
    _ method: String, _ url: String, _ body: String? = nil, headers: [String: String] = [:], timeout: TimeInterval = 10
) async throws -> (status: Int, body: String) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    request.timeoutInterval = timeout
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    if let body {
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

/// A whole number at `key` of a JSON object's text.
func number(_ key: String, in json: String) -> Int64? {
    (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?[key].flatMap { ($0 as? NSNumber)?.int64Value }
}

/// skipper-api as a child process on a free port of 127.0.0.1, once `GET /ready` answers 200 (within 30 s): the process
/// (the caller stops it) and its base URL.
func startAPI(url: String, environment: [String: String] = [:]) async throws -> (api: ChildProcess, base: String) {
    let port = freePort()
    let api = try ChildProcess.skipper("skipper-api", url: url, environment: environment.merging(["PORT": "\(port)"]) { $1 })
    let base = "http://127.0.0.1:\(port)"
    let ready = try await eventually(timeout: .seconds(30)) { (try? await http("GET", "\(base)/ready").status) == 200 }
    if !ready { api.killNow() }
    try #require(ready, "skipper-api did not become ready: \(api.log)")
    return (api, base)
}
