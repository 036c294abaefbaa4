import Foundation
import Testing
import TestSupport

@Suite struct ShopSchemaTests {
    @Test func stockCannotGoNegative() async throws {
        try await withTestDatabase { db in
            try await db.query("INSERT INTO products (name, category, stock, price_cents) VALUES ('x', 'c', 1, 100)")
            await #expect(throws: (any Error).self) {
                try await db.query("UPDATE products SET stock = stock - 2")
            }
            #expect(try await db.scalar("SELECT stock FROM products") == "1")
        }
    }

    @Test func salesReportHasItsOneRow() async throws {
        try await withTestDatabase { db in
            let rows = try await db.scalar("SELECT count(*) FROM sales_report")
            #expect(rows == "1")
            await #expect(throws: (any Error).self) { try await db.query("INSERT INTO sales_report (id) VALUES (2)") }
        }
    }
}
