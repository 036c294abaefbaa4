import Foundation
import Logging
import PostgresNIO
import Skipper

/// The shop's workloads: settling a million transactions against the one statement that does the same, and
/// orders over HTTP against the order statement alone.
extension BenchRun {
    static let settlementRows: Int64 = 1_000_000

    func settlement(into report: inout Report) async throws {
        try await self.reset()
        try await self.exec("TRUNCATE transactions, settlements, settlement_staging")
        try await self.exec(
            """
            INSERT INTO transactions (merchant_id, amount_cents, fee_cents, status, paid_at, created_at)
            SELECT m, a, a * 29 / 1000 + 30, s, CASE WHEN s IN ('PAID', 'REFUNDED') THEN at END, at
            FROM (SELECT 1 + floor(random() * 1000)::int8 AS m, 100 + floor(random() * 99900)::int8 AS a,
                         CASE WHEN r < 0.90 THEN 'PAID' WHEN r < 0.95 THEN 'FAILED' ELSE 'REFUNDED' END AS s,
                         timestamptz '2025-01-01 00:00:00+00' + random() * interval '31 days' AS at
                  FROM (SELECT random() AS r FROM generate_series(1, \(Self.settlementRows))) g) t
            ORDER BY at  -- appended as payments happen, as `make seed` does
            """)
        try await self.exec("VACUUM ANALYZE transactions")

        // Baseline: the single statement, on the same data.
        let single = try await self.timed {
            try await self.exec(
                """
                INSERT INTO settlements (merchant_id, date, gross_cents, fee_cents, net_cents, txn_count, generated_at, unique_run_id)
                SELECT merchant_id, (paid_at AT TIME ZONE 'UTC')::date, sum(amount_cents), sum(fee_cents),
                       sum(amount_cents) - sum(fee_cents), count(*), now(), 'baseline'
                FROM transactions
                WHERE status = 'PAID' AND paid_at >= '2025-01-01Z' AND paid_at < '2025-02-01Z'
                GROUP BY 1, 2
                ON CONFLICT (merchant_id, date) DO UPDATE SET
                  gross_cents = EXCLUDED.gross_cents, fee_cents = EXCLUDED.fee_cents, net_cents = EXCLUDED.net_cents,
                  txn_count = EXCLUDED.txn_count, generated_at = EXCLUDED.generated_at, unique_run_id = EXCLUDED.unique_run_id
                """)
        }
        try await self.exec("TRUNCATE settlements")

        let skipper = self.skipper
        var peak: Double?
        try await Runners.with(1, url: self.url, environment: [:]) { runners in
            try await self.waitUntil(timeout: 30) { try await self.count("SELECT count(*) FROM skipper.runners") == 1 }
            let job = try await skipper.enqueue(kind: "settlement", argsJSON: #"{"from": "2025-01-01", "to": "2025-01-31"}"#)
            try await self.waitUntil(timeout: 600) {
                try await self.count("SELECT count(*) FROM skipper.jobs WHERE id = \(job.id) AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')") == 1
            }
            guard try await self.count("SELECT count(*) FROM skipper.jobs WHERE id = \(job.id) AND status = 'COMPLETED'") == 1 else {
                throw BenchError("the settlement did not complete")
            }
            peak = runners.first?.peakRSSMiB
        }
        let wall = try await self.scalarDouble("SELECT extract(epoch FROM max(finished_at) - max(started_at))::float8 FROM skipper.jobs WHERE kind = 'settlement'")
        report.measurements.append(Measurement(
            name: "settlement of 1,000,000 transactions", value: wall, unit: "s",
            baseline: "one INSERT … GROUP BY … ON CONFLICT", baselineValue: single))
        if let peak { report.add("settlement: runner peak RSS", peak, "MiB") }
        Swift.print("settlement: \(wall) s (single statement \(single) s), runner peak RSS \(peak ?? -1) MiB")
    }
}
