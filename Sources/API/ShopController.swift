import Foundation
import Hummingbird
import Logging
import Shop
import Skipper

/// `/orders` and `/reports/sales`: orders on limited stock, and the sales report the `report.refresh` job keeps.
struct ShopController: Sendable {
    let database: Database
    let orders: OrderStore
    let logger: Logger

    func addRoutes(to router: Router<APIRequestContext>) {
        router.post("/orders", use: self.place)
        router.get("/orders/:id", use: self.get)
        router.post("/orders/:id/pay", use: self.pay)
        router.get("/reports/sales", use: self.report)
    }

    @Sendable func place(_ request: Request, context: APIRequestContext) async throws -> Response {
        let body = try await JSONObject.parse(request, context: context)
        try body.rejectUnknown(allowed: ["product_id", "quantity", "buyer_id"])
        let productID = try body.integer("product_id", in: 1...Int64.max, required: true)!
        let quantity = Int32(try body.integer("quantity", in: 1...1_000_000, required: true)!)
        let buyerID = try body.string("buyer_id", required: true, maxLength: 128)!
        let orders = self.orders
        switch try await self.database.run({ _ in try await orders.place(productID: productID, quantity: quantity, buyerID: buyerID) }) {
        case .placed(let order):
            return jsonResponse(.ok, order.json, headers: [.location: "/orders/\(order.id.uuidString.lowercased())"])
        case .outOfStock(let available):
            throw APIError(
                status: .conflict, code: "OUT_OF_STOCK",
                message: "product \(productID) has \(available) in stock; \(quantity) requested")
        case .unknownProduct:
            throw APIError.notFound("product \(productID)")
        }
    }

    @Sendable func get(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try orderID(context)
        let orders = self.orders
        guard let order = try await self.database.run({ _ in try await orders.order(id: id) }) else {
            throw APIError.notFound("order \(id.uuidString.lowercased())")
        }
        return jsonResponse(.ok, order.json)
    }

    @Sendable func pay(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try orderID(context)
        let orders = self.orders
        switch try await self.database.run({ _ in try await orders.pay(id: id) }) {
        case .paid(let order):
            return jsonResponse(.ok, order.json)
        case .alreadyPaid:
            throw APIError(status: .conflict, code: "ALREADY_PAID", message: "order \(id.uuidString.lowercased()) is already paid")
        case .notFound:
            throw APIError.notFound("order \(id.uuidString.lowercased())")
        }
    }

    @Sendable func report(_ request: Request, context: APIRequestContext) async throws -> Response {
        let logger = self.logger
        return jsonResponse(.ok, try await self.database.run { database in try await SalesReport.read(client: database.postgres, logger: logger) }.json)
    }

    private func orderID(_ context: APIRequestContext) throws -> UUID {
        let text = context.parameters.get("id") ?? ""
        guard let id = UUID(uuidString: text) else {
            throw APIError.invalidParameter("id", "an order id is a UUID, not '\(text)'")
        }
        return id
    }
}
