import Foundation
import Logging
import PostgresNIO
import Testing
import TestSupport

@testable import Skipper

/// The claim's cost must not depend on the backlog: with `queue = ANY($1)` PostgreSQL scanned and sorted all
/// 400,000 waiting jobs on every claim. Its plan at 1,000,000 QUEUED jobs, as the runner sends it.
@Suite struct ClaimPlanTests {
    let logger = Logger(label: "test")

    @Test func theClaimWalksTheIndexWhateverTheBacklog() async throws {
        try await withTestDatabase { db in
            try await db.query(
                "INSERT INTO skipper.jobs (kind, queue) SELECT 'noop', 'q' || (i % 3) FROM generate_series(1, 1000000) i")
            try await db.query("ANALYZE skipper.jobs_active")
            try await db.liveRunner("r")
            try await db.withClient { client in
                for queues in [["q0"], ["q0", "q1", "q2"]] {
                    var binds = PostgresBindings()
                    binds.append(["noop"])
                    binds.append(Int64(100))
                    binds.append("r")
                    for queue in queues {
                        binds.append(queue)
                        binds.append(ClaimPosition.start.priority)
                        binds.append(RawTimestamp(microseconds: ClaimPosition.start.runAtMicroseconds))
                        binds.append(ClaimPosition.start.id)
                    }
                    let explain = PostgresQuery(
                        unsafeSQL: "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + JobStore.claimSQL(queues: queues.count), binds: binds)
                    var lines: [String] = []
                    for try await line in try await client.query(explain, logger: self.logger).decode(String.self) { lines.append(line) }
                    let plan = lines.joined(separator: "\n")
                    #expect(!plan.contains("Seq Scan"), "\(queues): \(plan)")
                    #expect(plan.contains("Index Scan using jobs_active_claim_idx"), "\(queues): \(plan)")
                    #expect(plan.contains("Update on jobs_active"), "\(queues): only the active partition is touched: \(plan)")
                    if queues.count == 1 {
                        #expect(!plan.contains("Sort"), "\(plan)")
                    } else {
                        // The merge sorts the branches' rows, at most 100 per queue, never the backlog.
                        let appended = lines.first { $0.contains("Append (actual rows=") }
                            .flatMap { $0.components(separatedBy: "rows=").last?.split(separator: " ").first }.flatMap { Int($0) }
                        #expect(appended.map { $0 <= 300 } == true, "\(plan)")
                    }
                    #expect(plan.contains("Update on jobs_active j (actual rows=100"), "\(plan)")
                }
            }
        }
    }
}
