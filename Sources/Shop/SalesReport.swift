import Foundation
import Logging
import PostgresNIO
import Skipper

/// `report.refresh`: recomputes the one row of `sales_report` from the paid orders.
public struct ReportRefresh: JobHandler {
    public struct Args: Codable, Sendable {}
    public static let kind = "report.refresh"
    public init() {}

    public func run(_ args: Args, context: JobContext) async throws -> NoOutput? {
        try await context.withConnection { connection in
            try await SalesReport.refresh(on: connection, logger: context.logger)
        }
        return nil
    }
}

/// The sales report: its refresh and its read.
public enum SalesReport {
    /// Recomputes the report in one transaction. The row lock comes first, and the aggregate reads after it with a
    /// fresh snapshot, so concurrent refreshes queue up and each writes numbers no older than the one before.
    public static func refresh(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.perform("SELECT 1 FROM sales_report WHERE id = 1 FOR UPDATE", logger: logger)
            try await connection.query(
                """
                UPDATE sales_report r
                SET total_revenue_cents = t.revenue, paid_orders = t.orders, products_sold = t.quantity,
                    unique_customers = t.customers, by_category = c.by_category, updated_at = now()
                FROM (SELECT coalesce(sum(total_amount_cents), 0)::int8 AS revenue, count(*)::int8 AS orders,
                             coalesce(sum(quantity), 0)::int8 AS quantity, count(DISTINCT buyer_id)::int8 AS customers
                      FROM orders WHERE status = 'PAID') t,
                     (SELECT coalesce(jsonb_object_agg(category, jsonb_build_object(
                                 'revenue_cents', revenue, 'orders', orders, 'quantity', quantity)), '{}'::jsonb) AS by_category
                      FROM (SELECT p.category, sum(o.total_amount_cents)::int8 AS revenue, count(*)::int8 AS orders,
                                   sum(o.quantity)::int8 AS quantity
                            FROM orders o JOIN products p ON p.id = o.product_id
                            WHERE o.status = 'PAID' GROUP BY p.category) per) c
                WHERE r.id = 1
                """,
                logger: logger)
        }
    }

    /// The report's one row.
    public struct Row: Sendable, Equatable {
        public var totalRevenueCents: Int64 = 0
        public var paidOrders: Int64 = 0
        public var productsSold: Int64 = 0
        public var uniqueCustomers: Int64 = 0
        /// JSON text: per category, revenue_cents, orders and quantity.
        public var byCategory = "{}"
        /// When the last refresh wrote it; nil before any.
        public var updatedAt: Date?
    }

    /// The report as the last refresh left it (all zero before the first).
    public static func read(client: PostgresClient, logger: Logger) async throws -> Row {
        let rows = try await client.query(
            """
            SELECT total_revenue_cents, paid_orders, products_sold, unique_customers, by_category::text, updated_at
            FROM sales_report WHERE id = 1
            """,
            logger: logger)
        for try await (revenue, orders, sold, customers, byCategory, updated) in rows.decode((Int64, Int64, Int64, Int64, String, Date).self) {
            return Row(
                totalRevenueCents: revenue, paidOrders: orders, productsSold: sold, uniqueCustomers: customers,
                byCategory: byCategory, updatedAt: updated)
        }
        return Row()
    }
}
