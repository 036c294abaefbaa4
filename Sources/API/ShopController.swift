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

    func addRoutes(to api: APIRoutes) {
        api.add(.placeOrder, use: self.place)
        api.add(.getOrder, use: self.get)
        api.add(.payOrder, use: self.pay)
        api.add(.salesReport, use: self.report)
    }

    /// The body passed ``APISchemas/newOrder``: every field is there and in range.
    @Sendable func place(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let productID = input.body.integer("product_id")!
        let quantity = Int32(input.body.integer("quantity")!)
        let buyerID = input.body.string("buyer_id")!
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

    @Sendable func get(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let id = input.parameters.uuid("id")!
        let orders = self.orders
        guard let order = try await self.database.run({ _ in try await orders.order(id: id) }) else {
            throw APIError.notFound("order \(id.uuidString.lowercased())")
        }
        return jsonResponse(.ok, order.json)
    }

    @Sendable func pay(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let id = input.parameters.uuid("id")!
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

    @Sendable func report(_ request: Request, context: APIRequestContext, input: Input) async throws -> Response {
        let logger = self.logger
        return jsonResponse(.ok, try await self.database.run { database in try await SalesReport.read(client: database.postgres, logger: logger) }.json)
    }
}
