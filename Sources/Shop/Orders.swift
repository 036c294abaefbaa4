import Foundation
import Logging
import PostgresNIO
import Skipper

/// An order as the API shows it.
public struct Order: Sendable, Equatable {
    public let id: UUID
    public let productID: Int64
    public let buyerID: String
    public let quantity: Int32
    public let totalAmountCents: Int64
    public let status: String
    public let createdAt: Date
    public let paidAt: Date?

    static let columns = "o.id, o.product_id, o.buyer_id, o.quantity, o.total_amount_cents, o.status, o.created_at, o.paid_at"

    init(row: PostgresRow) throws {
        let cells = row.makeRandomAccess()
        self.id = try cells[0].decode(UUID.self)
        self.productID = try cells[1].decode(Int64.self)
        self.buyerID = try cells[2].decode(String.self)
        self.quantity = try cells[3].decode(Int32.self)
        self.totalAmountCents = try cells[4].decode(Int64.self)
        self.status = try cells[5].decode(String.self)
        self.createdAt = try cells[6].decode(Date.self)
        self.paidAt = try cells[7].decode(Date?.self)
    }
}

/// What placing an order did.
public enum PlaceOrderOutcome: Sendable, Equatable {
    case placed(Order)
    /// The product has fewer than asked for.
    case outOfStock(available: Int32)
    case unknownProduct
}

/// What paying an order did.
public enum PayOutcome: Sendable, Equatable {
    case paid(Order)
    case alreadyPaid
    case notFound
}

/// The shop's order SQL: stock is taken in the same statement that inserts the order, so no interleaving of
/// concurrent orders can oversell, and each order locks only its product's row, so none can deadlock.
public struct OrderStore: Sendable {
    public let skipper: SkipperClient
    let logger: Logger
    var client: PostgresClient { self.skipper.store.client }

    /// How long a refresh waits after the payment that asked for it, so a burst of payments shares one.
    public static let refreshDelay: TimeInterval = 0.5

    public init(skipper: SkipperClient, logger: Logger) {
        self.skipper = skipper
        self.logger = logger
    }

    /// Takes `quantity` from the product's stock and records the order, atomically.
    public func place(productID: Int64, quantity: Int32, buyerID: String) async throws -> PlaceOrderOutcome {
        let rows = try await self.client.query(
            """
            WITH p AS (
              UPDATE products SET stock = stock - \(quantity)
              WHERE id = \(productID) AND stock >= \(quantity)
              RETURNING id, price_cents)
            INSERT INTO orders AS o (product_id, buyer_id, quantity, total_amount_cents)
            SELECT p.id, \(buyerID), \(quantity), p.price_cents * \(quantity) FROM p
            RETURNING \(unescaped: Order.columns)
            """,
            logger: self.logger)
        for try await row in rows { return .placed(try Order(row: row)) }
        for try await stock in try await self.client.query("SELECT stock FROM products WHERE id = \(productID)", logger: self.logger)
            .decode(Int32.self)
        {
            return .outOfStock(available: stock)
        }
        return .unknownProduct
    }

    public func order(id: UUID) async throws -> Order? {
        let rows = try await self.client.query("SELECT \(unescaped: Order.columns) FROM orders o WHERE o.id = \(id)", logger: self.logger)
        for try await row in rows { return try Order(row: row) }
        return nil
    }

    /// Marks the order PAID and, in the same transaction, asks for a sales-report refresh. The refresh has a
    /// unique key and starts after a short delay, so a burst of payments is folded into a handful of refreshes.
    public func pay(id: UUID) async throws -> PayOutcome {
        let logger = self.logger
        let paid = try await self.skipper.withTransaction { connection, enqueue -> Order? in
            let rows = try await connection.query(
                """
                UPDATE orders o SET status = 'PAID', paid_at = now()
                WHERE o.id = \(id) AND o.status = 'PENDING'
                RETURNING \(unescaped: Order.columns)
                """,
                logger: logger)
            var order: Order?
            for try await row in rows { order = try Order(row: row) }
            guard let order else { return nil }
            try await enqueue.enqueue(
                kind: ReportRefresh.kind,
                options: JobOptions(runAt: Date().addingTimeInterval(Self.refreshDelay), uniqueKey: ReportRefresh.kind))
            return order
        }
        if let paid { return .paid(paid) }
        return try await self.order(id: id) == nil ? .notFound : .alreadyPaid
    }
}
