import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Debian's Chromium and its driver; CHROMIUM and CHROMEDRIVER name others.
enum Browser {
    static let chromium = ProcessInfo.processInfo.environment["CHROMIUM"] ?? "/usr/bin/chromium"
    static let chromedriver = ProcessInfo.processInfo.environment["CHROMEDRIVER"] ?? "/usr/bin/chromedriver"
    /// What skipper-api serves at /ui/vendor/chart.min.js (its CHART_JS default).
    static let chartJS = ProcessInfo.processInfo.environment["CHART_JS"] ?? "/usr/share/javascript/chart.js/chart.min.js"

    /// Fails with what to install when the browser, its driver or Chart.js is missing.
    static func requireInstalled() throws {
        var missing: [String] = []
        if !FileManager.default.isExecutableFile(atPath: chromium) { missing.append("\(chromium) (Debian package chromium)") }
        if !FileManager.default.isExecutableFile(atPath: chromedriver) { missing.append("\(chromedriver) (Debian package chromium-driver)") }
        if !FileManager.default.fileExists(atPath: chartJS) { missing.append("\(chartJS) (Debian package libjs-chart.js)") }
        guard missing.isEmpty else {
            throw TestSetupError(
                "BrowserTests drive a headless Chromium and cannot run: missing \(missing.joined(separator: ", ")). "
                    + "Install them with `apt-get install -y chromium chromium-driver libjs-chart.js`.")
        }
    }
}

/// A chromedriver process of the test's own (`--port`), stopped by its PID.
final class ChromeDriver: Sendable {
    let process: ChildProcess
    let base: String

    init() async throws {
        let port = freePort()
        self.base = "http://127.0.0.1:\(port)"
        self.process = try ChildProcess(Browser.chromedriver, ["--port=\(port)", "--allowed-ips=127.0.0.1"])
        let ready = try await eventually(timeout: .seconds(20), every: .milliseconds(100)) {
            guard let answer = try? await webDriverRequest("GET", "\(self.base)/status", nil, timeout: 2) else { return false }
            return ((answer["value"] as? [String: Any])?["ready"] as? Bool) == true
        }
        guard ready else {
            self.process.killNow()
            throw TestSetupError("chromedriver did not become ready on \(self.base): \(self.process.log.suffix(2000))")
        }
    }

    /// A new headless Chromium session.
    func session() async throws -> WebDriverSession {
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": Browser.chromium,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900", "--hide-scrollbars", "--disable-dev-shm-usage",
                                 "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--lang=en-GB"],
                    ],
                    "timeouts": ["implicit": 0, "pageLoad": 20000, "script": 10000],
                ] as [String: Any],
            ],
        ]
        let answer = try await webDriverRequest("POST", "\(self.base)/session", capabilities, timeout: 60)
        guard let value = answer["value"] as? [String: Any], let id = value["sessionId"] as? String else {
            throw TestSetupError("chromedriver refused a session: \(answer); \(self.process.log.suffix(2000))")
        }
        return WebDriverSession(url: "\(self.base)/session/\(id)")
    }

    /// SIGTERM, then SIGKILL after 5 s.
    func stop() async { await self.process.stop(timeout: .seconds(5)) }
}

/// One browser session, spoken to in W3C WebDriver (JSON over HTTP).
struct WebDriverSession: Sendable {
    let url: String
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    @discardableResult
    func command(_ method: String, _ path: String, _ body: [String: Any]? = nil, timeout: TimeInterval = 30) async throws -> [String: Any] {
        let answer = try await webDriverRequest(method, self.url + path, body ?? (method == "POST" ? [:] : nil), timeout: timeout)
        if let value = answer["value"] as? [String: Any], let error = value["error"] as? String {
            throw WebDriverError(description: "\(method) \(path): \(error): \((value["message"] as? String)?.prefix(600) ?? "")")
        }
        return answer
    }

    func open(_ address: String) async throws { try await self.command("POST", "/url", ["url": address]) }

    /// Runs a script in the page (`return ...`); its value as text: a string as it is, anything else as JSON
    /// (true is "true"), nil for null or undefined. Stringified in the page: Foundation on Linux reads JSON's true as 1.
    func js(_ script: String, _ args: [Any] = []) async throws -> String? {
        let wrapped = """
            const value = (function () { \(script)\n }).apply(null, arguments);
            return value === undefined || value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);
            """
        let answer = try await self.command("POST", "/execute/sync", ["script": wrapped, "args": args])
        return answer["value"] as? String
    }

    /// The first element `css` selects (throws when none does).
    func element(_ css: String) async throws -> String {
        let answer = try await self.command("POST", "/element", ["using": "css selector", "value": css])
        guard let value = answer["value"] as? [String: Any], let id = value[Self.elementKey] as? String else {
            throw WebDriverError(description: "no element \(css): \(answer)")
        }
        return id
    }

    /// Clicks what `css` selects, as a user would (the driver scrolls it into view and checks it can be clicked).
    func click(_ css: String) async throws {
        let id = try await self.element(css)
        try await self.command("POST", "/element/\(id)/click")
    }

    /// Clears the input `css` selects and types `text` into it.
    func type(_ css: String, _ text: String) async throws {
        let id = try await self.element(css)
        try await self.command("POST", "/element/\(id)/clear")
        try await self.command("POST", "/element/\(id)/value", ["text": text])
    }

    /// A PNG of the viewport.
    func screenshot() async throws -> Data {
        let answer = try await self.command("GET", "/screenshot")
        guard let base64 = answer["value"] as? String, let data = Data(base64Encoded: base64) else {
            throw WebDriverError(description: "no screenshot in the answer")
        }
        return data
    }

    /// The folder of the screenshots, emptied by the first test that saves one (no picture of an earlier run stays).
    static let screenshots: URL = {
        let folder = Paths.root.appendingPathComponent(".build/test-output/ui", isDirectory: true)
        try? FileManager.default.removeItem(at: folder)
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }()

    /// Saves a screenshot of the whole page (the window grown to the page's height, at most 2,400 px) as `name`.png
    /// under .build/test-output/ui/; returns its path.
    @discardableResult
    func save(_ name: String) async throws -> String {
        let file = Self.screenshots.appendingPathComponent("\(name).png")
        let size = try await self.js(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight, window.outerWidth]")
        let numbers = (size ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").compactMap { Int($0) }
        if numbers.count == 3 {
            try await self.command("POST", "/window/rect", ["width": numbers[2], "height": min(2400, max(900, numbers[0] + numbers[1]))])
            // Let the page lay itself out again (the charts redraw on resize).
            try await Task.sleep(for: .milliseconds(400))
        }
        try await self.screenshot().write(to: file)
        if numbers.count == 3 { try await self.command("POST", "/window/rect", ["width": numbers[2], "height": 900]) }
        return file.path
    }

    func quit() async { _ = try? await self.command("DELETE", "", timeout: 15) }

    /// Polls `script` until it returns true (the string "true"), at most `timeout`; fails with what the page shows.
    func wait(_ what: String, timeout: Duration = .seconds(15), _ script: String) async throws {
        let deadline = ContinuousClock.now + timeout
        var last: String?
        while ContinuousClock.now < deadline {
            last = try? await self.js(script)
            if last == "true" { return }
            try await Task.sleep(for: .milliseconds(150))
        }
        let page = (try? await self.js("return location.href + ' | ' + document.querySelector('#app').innerText")) ?? "?"
        throw WebDriverError(description: "waited \(timeout) for \(what) (last: \(last ?? "nil")); the page: \(page.prefix(1500))")
    }

    /// Polls `script` until it returns a value `accept` takes, at most `timeout`; returns that value.
    func waitForValue(
        _ what: String, timeout: Duration = .seconds(15), _ script: String, _ accept: (String) -> Bool
    ) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var last: String?
        while ContinuousClock.now < deadline {
            last = try? await self.js(script)
            if let value = last, accept(value) { return value }
            try await Task.sleep(for: .milliseconds(100))
        }
        let page = (try? await self.js("return location.href + ' | ' + document.querySelector('#app').innerText")) ?? "?"
        throw WebDriverError(description: "waited \(timeout) for \(what) (last: \(last ?? "nil")); the page: \(page.prefix(1500))")
    }
}

struct WebDriverError: Error, CustomStringConvertible {
    let description: String
}

/// One WebDriver call: the answer's JSON object. Over a connection of its own with HummingbirdTesting's NIO client:
/// Foundation's URLSession on Linux cannot read chromedriver's answers (its `Content-Length:252`, without a space,
/// fails in libcurl's header callback with "Failed writing header").
func webDriverRequest(_ method: String, _ url: String, _ body: [String: Any]?, timeout: TimeInterval) async throws -> [String: Any] {
    guard let parts = URLComponents(string: url), let host = parts.host, let port = parts.port,
        let verb = HTTPRequest.Method(method)
    else { throw WebDriverError(description: "cannot request \(method) \(url)") }
    var headers: HTTPFields = [:]
    var payload: ByteBuffer?
    if let body {
        payload = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body))
        headers[.contentType] = "application/json; charset=utf-8"
    }
    let request = TestClient.Request(parts.percentEncodedPath, method: verb, authority: "\(host):\(port)", headers: headers, body: payload)
    let response = try await TestClient.withClient(host: host, port: port, configuration: .init(timeout: .seconds(timeout))) { client in
        try await client.execute(request)
    }
    let data = response.body.map { Data($0.readableBytesView) } ?? Data()
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw WebDriverError(description: "\(method) \(url): HTTP \(response.status.code), not a JSON object: \(String(decoding: data.prefix(300), as: UTF8.self))")
    }
    return object
}

/// One request to the API under test, with its token: status and body.
func apiRequest(
    _ method: String, _ url: String, _ body: String? = nil, token: String? = nil, timeout: TimeInterval = 10
) async throws -> (status: Int, body: String) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    request.timeoutInterval = timeout
    if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    if let body {
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

/// A field of a JSON object's text.
func field(_ key: String, in json: String) -> Any? {
    (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?[key]
}
