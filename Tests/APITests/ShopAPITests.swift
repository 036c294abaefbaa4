import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Shop
import Skipper
import Testing
import TestSupport

@testable import API

@Suite struct ShopAPITests {
    @Test func ordersTakeStockAndPayingQueuesOneRefresh() async throws {
        try await withAPI { db, client in
            let product = try #require(try await db.scalar(
                "INSERT INTO products (name, category, stock, price_cents) VALUES ('Grinder', 'equipment', 5, 1000) RETURNING id"))
            let placed = try await client.send(.post, "/orders", json: #"{"product_id": \#(product), "quantity": 2, "buyer_id": "ana"}"#)
            #expect(placed.status == .ok, "\(placed.text)")
            #expect(placed.int("total_amount_cents") == 2000)
            #expect(placed.string("status") == "PENDING")
            let id = try #require(placed.string("order_id"))
            #expect(try await db.scalar("SELECT stock FROM products WHERE id = \(Int64(product)!)") == "3")

            let tooMany = try await client.send(.post, "/orders", json: #"{"product_id": \#(product), "quantity": 4, "buyer_id": "bo"}"#)
            #expect(tooMany.status == .conflict)
            #expect(tooMany.errorCode == "OUT_OF_STOCK")
            for (body, status, code) in [
                (#"{"product_id": 999999, "quantity": 1, "buyer_id": "bo"}"#, HTTPResponse.Status.notFound, "NOT_FOUND"),
                (#"{"product_id": \#(product), "quantity": 0, "buyer_id": "bo"}"#, .unprocessableContent, "INVALID_FIELD"),
                (#"{"product_id": \#(product), "quantity": -1, "buyer_id": "bo"}"#, .unprocessableContent, "INVALID_FIELD"),
                (#"{"product_id": \#(product), "quantity": "2", "buyer_id": "bo"}"#, .unprocessableContent, "INVALID_FIELD"),
                (#"{"product_id": \#(product), "quantity": 1}"#, .unprocessableContent, "INVALID_FIELD"),
                (#"{"product_id": \#(product), "quantity": 1, "buyer_id": ""}"#, .unprocessableContent, "INVALID_FIELD"),
                (#"{"product_id": "x", "quantity": 1, "buyer_id": "bo"}"#, .unprocessableContent, "INVALID_FIELD"),
                (#"not json"#, .badRequest, "INVALID_JSON"),
            ] {
                let response = try await client.send(.post, "/orders", json: body)
                #expect(response.status == status, "\(body): \(response.text)")
                #expect(response.errorCode == code, "\(body): \(response.text)")
            }
            #expect(try await db.scalar("SELECT stock FROM products WHERE id = \(Int64(product)!)") == "3")

            #expect(try await client.send(.get, "/orders/\(id)").string("buyer_id") == "ana")
            #expect(try await client.send(.get, "/orders/not-a-uuid").status == .badRequest)
            #expect(try await client.send(.get, "/orders/\(UUID().uuidString)").status == .notFound)
            #expect(try await client.send(.post, "/orders/\(UUID().uuidString)/pay").status == .notFound)

            let paid = try await client.send(.post, "/orders/\(id)/pay")
            #expect(paid.status == .ok)
            #expect(paid.string("status") == "PAID")
            #expect(paid.json["paid_at"] is String)
            let again = try await client.send(.post, "/orders/\(id)/pay")
            #expect(again.status == .conflict)
            #expect(again.errorCode == "ALREADY_PAID")
            // The refresh was queued in the payment's transaction, with its unique key.
            #expect(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE kind = 'report.refresh' AND unique_key = 'report.refresh' AND status = 'QUEUED'") == "1")
        }
    }

    /// 500 simultaneous orders of one item against a stock of 100: exactly 100 succeed, and the stock ends at 0.
    @Test func fiveHundredConcurrentOrdersNeverOversell() async throws {
        try await withAPI { db, client in
            let product = try #require(try await db.scalar(
                "INSERT INTO products (name, category, stock, price_cents) VALUES ('Geisha', 'coffee', 100, 5900) RETURNING id"))
            let port = try #require(client.port)
            let statuses = try await concurrentPosts(
                count: 500, url: "http://127.0.0.1:\(port)/orders",
                body: { i in #"{"product_id": \#(product), "quantity": 1, "buyer_id": "buyer-\#(i)"}"# })
            #expect(statuses.filter { $0 == 200 }.count == 100)
            #expect(statuses.filter { $0 == 409 }.count == 400)
            #expect(try await db.scalar("SELECT stock FROM products WHERE id = \(Int64(product)!)") == "0")
            #expect(try await db.scalar("SELECT count(*) FROM orders") == "100")
        }
    }

    /// 1,000 payments in a burst: a handful of refreshes, and the report then equals the paid orders.
    @Test func aBurstOfPaymentsFoldsIntoAFewRefreshes() async throws {
        try await withAPI(kinds: []) { db, client in
            let runner = try ChildProcess.runner(url: db.url)
            defer { runner.killNow() }
            _ = try await db.query(
                """
                INSERT INTO products (name, category, stock, price_cents)
                SELECT 'p' || i, (ARRAY['coffee', 'equipment', 'supplies'])[1 + i % 3], 0, 100 * i FROM generate_series(1, 9) i
                """)
            let ids = try await db.query(
                """
                INSERT INTO orders (product_id, buyer_id, quantity, total_amount_cents)
                SELECT p.id, 'buyer-' || (i % 300), 1 + i % 4, p.price_cents * (1 + i % 4)
                FROM generate_series(1, 1000) i JOIN products p ON p.id = (SELECT min(id) FROM products) + i % 9
                RETURNING id::text
                """
            ).compactMap { $0.first ?? nil }
            #expect(ids.count == 1000)
            let port = try #require(client.port)
            let burstStart = ContinuousClock.now
            let statuses = try await concurrentPosts(count: ids.count, url: { "http://127.0.0.1:\(port)/orders/\(ids[$0])/pay" }, body: { _ in "" })
            let burst = ContinuousClock.now - burstStart
            #expect(statuses.allSatisfy { $0 == 200 }, "\(Set(statuses))")
            #expect(try await db.scalar("SELECT count(*) FROM orders WHERE status = 'PAID'") == "1000")

            let drained = try await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE kind = 'report.refresh' AND status IN ('QUEUED', 'RUNNING')") == "0"
            }
            #expect(drained, "\(runner.log)")
            let expected = try #require(try await db.scalar(
                """
                SELECT json_build_object('revenue', sum(total_amount_cents), 'orders', count(*), 'sold', sum(quantity),
                                         'customers', count(DISTINCT buyer_id))::text
                FROM orders WHERE status = 'PAID'
                """))
            let report = try await client.send(.get, "/reports/sales")
            let actual = #"{"revenue" : \#(report.int("total_revenue_cents") ?? -1), "orders" : \#(report.int("paid_orders") ?? -1), "sold" : \#(report.int("products_sold") ?? -1), "customers" : \#(report.int("unique_customers") ?? -1)}"#
            #expect(actual == expected)
            let byCategory = try #require(report.json["by_category"] as? [String: [String: Any]])
            #expect(Set(byCategory.keys) == ["coffee", "equipment", "supplies"])
            let categoryRevenue = byCategory.values.compactMap { ($0["revenue_cents"] as? NSNumber)?.int64Value }.reduce(0, +)
            #expect(categoryRevenue == report.int("total_revenue_cents"))
            let refreshes = Int(try await db.scalar("SELECT count(*) FROM skipper.jobs WHERE kind = 'report.refresh'") ?? "") ?? -1
            // Payments within one refresh delay share a QUEUED refresh: at most one per delay of the burst, plus the
            // one running when the burst ends and the one after it. Far from one per payment however slow the machine.
            let bound = Int((burst / .milliseconds(Int(OrderStore.refreshDelay * 1000))).rounded(.up)) + 2
            #expect((1...bound).contains(refreshes), "refreshes: \(refreshes) for a burst of \(burst)")
            #expect(refreshes <= 50)
            await runner.stop()
        }
    }
}

/// Sends `count` POSTs at once over up to 64 connections; returns their statuses (0 for a transport error).
/// A 503 is retried after a moment, as a client should: on this 2-core machine, with other suites running, a
/// request can wait past the API's 2 s database deadline for one of its 20 connections.
func concurrentPosts(count: Int, url: String, body: @escaping @Sendable (Int) -> String) async throws -> [Int] {
    try await concurrentPosts(count: count, url: { _ in url }, body: body)
}

func concurrentPosts(count: Int, url: @escaping @Sendable (Int) -> String, body: @escaping @Sendable (Int) -> String) async throws -> [Int] {
    await concurrentResponses(count: count, url: url, body: body).map(\.status)
}

/// The same, with each response's body, in the order of `i`; request `i` carries `X-Request-ID: req-<i>`.
func concurrentResponses(
    count: Int, url: @escaping @Sendable (Int) -> String, body: @escaping @Sendable (Int) -> String
) async -> [(status: Int, body: Data)] {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.httpMaximumConnectionsPerHost = 64
    configuration.timeoutIntervalForRequest = 30
    let session = URLSession(configuration: configuration)
    return await withTaskGroup(of: (Int, Int, Data).self) { group in
        for i in 0..<count {
            group.addTask {
                var request = URLRequest(url: URL(string: url(i))!)
                request.httpMethod = "POST"
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                request.setValue("req-\(i)", forHTTPHeaderField: "X-Request-ID")
                let text = body(i)
                if !text.isEmpty { request.httpBody = Data(text.utf8) }
                for _ in 0..<3 {
                    guard let (data, response) = try? await session.data(for: request) else { return (i, 0, Data()) }
                    let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                    if status != 503 { return (i, status, data) }
                    try? await Task.sleep(for: .milliseconds(200))
                }
                return (i, 503, Data())
            }
        }
        var responses = [(status: Int, body: Data)](repeating: (0, Data()), count: count)
        for await (i, status, data) in group { responses[i] = (status, data) }
        return responses
    }
}
