import Foundation
import Logging
import PostgresNIO
import Skipper
import TestSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Job submissions over HTTP (wrk with keep-alive against a release skipper-api) against the raw single-row
/// INSERT the submit needs, from as many concurrent clients over as many connections, in the same run.
extension BenchRun {
    static let httpSeconds = 10
    static let httpConnections = 32
    static let httpRounds = 3
    static let roundSeconds = 6

    func http(into report: inout Report) async throws {
        guard let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            Swift.print("http: skipped, wrk is not installed (apt-get install wrk)")
            return
        }
        try await self.reset()
        try await self.exec("INSERT INTO skipper.kinds (kind) VALUES ('noop') ON CONFLICT DO NOTHING")

        let port = Int.random(in: 30000..<50000)
        let api = try ChildProcess.skipper("skipper-api", url: self.url, environment: ["PORT": "\(port)", "LOG_LEVEL": "error"])
        defer { api.signal(SIGTERM) }
        try await self.waitUntil(timeout: 30) { await Self.get("http://127.0.0.1:\(port)/ready") == 200 }

        let script = FileManager.default.temporaryDirectory.appendingPathComponent("skipper-submit.lua")
        try #"""
            wrk.method = "POST"
            wrk.body = '{"kind": "noop", "args": {"n": 1}}'
            wrk.headers["Content-Type"] = "application/json"
            """#.write(to: script, atomically: true, encoding: .utf8)
        // Baseline and HTTP alternate in rounds, so that both meet the same background (autovacuum, page cache);
        // the medians are reported. Baseline: single-row INSERTs from 32 loops over a pool as large as the API's.
        var raws: [Double] = []
        var rates: [(rate: Double, p99: Double)] = []
        for _ in 0..<Self.httpRounds {
            raws.append(try await self.rawLoops(connections: Self.httpConnections, seconds: Self.roundSeconds) { _ in
                "INSERT INTO skipper.jobs (kind, args) VALUES ('noop', '{}'::jsonb) RETURNING id"
            })
            let output = try await runProcess(
                wrk, ["-t2", "-c\(Self.httpConnections)", "-d\(Self.roundSeconds)s", "--latency", "-s", script.path, "http://127.0.0.1:\(port)/jobs"]).stdout
            guard let rate = Self.number(after: "Requests/sec:", in: output), let p99 = Self.latency(percentile: "99%", in: output) else {
                throw BenchError("could not read wrk's output:\n\(output)")
            }
            if output.contains("Non-2xx") { throw BenchError("some submissions failed:\n\(output)") }
            rates.append((rate, p99))
            Swift.print("round: raw INSERT \(Int(raws.last!))/s, POST /jobs \(Int(rate))/s, p99 \(p99) ms")
        }
        let raw = raws.sorted()[raws.count / 2]
        let rate = rates.map(\.rate).sorted()[rates.count / 2]
        let p99 = rates.map(\.p99).sorted()[rates.count / 2]
        let stored = try await self.count("SELECT count(*) FROM skipper.jobs")
        try await self.orders(into: &report, wrk: wrk, port: port)
        report.measurements.append(Measurement(
            name: "POST /jobs over HTTP, \(Self.httpConnections) conns (median of 3)", value: rate, unit: "jobs/s",
            baseline: "single-row INSERT, \(Self.httpConnections) clients", baselineValue: raw))
        report.add("POST /jobs over HTTP p99 latency", p99, "ms")
        Swift.print("http submit: \(Int(rate)) jobs/s, p99 \(p99) ms, \(stored) jobs stored")
    }

    /// Orders from 64 keep-alive connections on one hot product and spread over 100, against the order statement
    /// alone from 64 concurrent loops on as many connections as the API has.
    func orders(into report: inout Report, wrk: String, port: Int) async throws {
        try await self.exec("TRUNCATE orders CASCADE")
        try await self.exec("DELETE FROM products")
        try await self.exec("INSERT INTO products (name, category, stock, price_cents) SELECT 'p' || i, 'bench', 1000000000, 100 FROM generate_series(1, 100) i")
        let first = try await self.count("SELECT min(id) FROM products")
        for (label, spread) in [("one hot product", 1), ("100 products", 100)] {
            let raw = try await self.rawLoops(connections: 64) { i in
                let product = first + Int64(i % spread)
                return """
                    WITH p AS (UPDATE products SET stock = stock - 1 WHERE id = \(product) AND stock >= 1 RETURNING id, price_cents)
                    INSERT INTO orders (product_id, buyer_id, quantity, total_amount_cents)
                    SELECT p.id, 'bench', 1, p.price_cents FROM p RETURNING id
                    """
            }
            let script = FileManager.default.temporaryDirectory.appendingPathComponent("skipper-orders.lua")
            try """
                math.randomseed(os.time())
                request = function()
                  local body = '{"product_id": ' .. (\(first) + math.random(0, \(spread - 1))) .. ', "quantity": 1, "buyer_id": "bench"}'
                  return wrk.format("POST", "/orders", {["Content-Type"] = "application/json"}, body)
                end
                """.write(to: script, atomically: true, encoding: .utf8)
            let output = try await runProcess(wrk, ["-t2", "-c64", "-d\(Self.httpSeconds)s", "--latency", "-s", script.path, "http://127.0.0.1:\(port)/orders"]).stdout
            guard let rate = Self.number(after: "Requests/sec:", in: output), let p99 = Self.latency(percentile: "99%", in: output) else {
                throw BenchError("could not read wrk's output:\n\(output)")
            }
            if output.contains("Non-2xx") { throw BenchError("some orders failed:\n\(output)") }
            report.measurements.append(Measurement(
                name: "POST /orders over HTTP, \(label)", value: rate, unit: "orders/s",
                baseline: "order statement, 64 clients", baselineValue: raw))
            report.add("POST /orders p99, \(label)", p99, "ms")
            Swift.print("orders (\(label)): \(Int(rate))/s, p99 \(p99) ms; raw \(Int(raw))/s")
        }
    }

    /// Runs `statement(i)` from `connections` concurrent loops over a 20-connection pool for httpSeconds; per second.
    func rawLoops(connections: Int, seconds: Int = BenchRun.httpSeconds, _ statement: @escaping @Sendable (Int) -> PostgresQuery) async throws -> Double {
        let pool = PostgresClient(
            configuration: try DatabaseConfig(url: self.url).clientConfiguration(maxConnections: 20, applicationName: "skipper-bench-raw"),
            backgroundLogger: self.logger)
        let done = try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                await pool.run()
                return 0
            }
            let deadline = ContinuousClock.now + .seconds(seconds)
            for loop in 0..<connections {
                group.addTask {
                    var count = 0
                    while ContinuousClock.now < deadline {
                        try await pool.query(statement(loop + count * connections), logger: self.logger)
                        count += 1
                    }
                    return count
                }
            }
            var total = 0
            for _ in 0..<connections { total += try await group.next() ?? 0 }
            group.cancelAll()
            return total
        }
        return Double(done) / Double(seconds)
    }

    /// The status and body of a GET.
    static func getBody(_ url: String) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    static func get(_ url: String) async -> Int? {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 2
        guard let (_, response) = try? await URLSession.shared.data(for: request) else { return nil }
        return (response as? HTTPURLResponse)?.statusCode
    }

    static func number(after label: String, in text: String) -> Double? {
        guard let line = text.split(separator: "\n").first(where: { $0.contains(label) }) else { return nil }
        return line.split(separator: " ").last.flatMap { Double($0) }
    }

    /// wrk's latency distribution line, e.g. `     99%   12.34ms`, in milliseconds.
    static func latency(percentile: String, in text: String) -> Double? {
        guard let line = text.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(percentile) }),
            let value = line.split(separator: " ").last
        else { return nil }
        for (unit, factor) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where value.hasSuffix(unit) {
            return Double(value.dropLast(unit.count)).map { $0 * factor }
        }
        return nil
    }
}
