import Foundation
import Logging
import PostgresNIO
import Skipper
import TestSupport

/// The baselines that contain no Skipper code (bench/peers): PGQueuer from PyPI, and the minimal SKIP LOCKED
/// claim+complete cycle with pgbench on a three-column table; on the same PostgreSQL, in the same run.
struct Peers: Sendable {
    var pgqueuerVersion: String?
    var pgqueuerDrain: Double?
    var pgqueuerWALPerJob: Double?
    var pgqueuerPickupP50: Double?
    var pgqueuerPickupP99: Double?
    var minimalOneClient: Double?
    var minimalTwoClients: Double?
    var minimalWALPerJob: Double?
}

extension BenchRun {
    /// Runs both peers on a database of their own; what cannot run (no PyPI, no pgbench) is reported and skipped.
    func peers() async throws -> Peers {
        var peers = Peers()
        let database = try DatabaseConfig(url: self.url).with(database: "skipper_bench_peers")
        try await BenchDatabase.recreate(database, from: try DatabaseConfig(url: self.url), logger: self.logger, migrate: false)
        let env = ["DATABASE_URL": database.url(redacted: false)]
        let setup = try await runProcess("bench/peers/setup.sh", [], environment: ProcessInfo.processInfo.environment)
        if setup.status == 0, let python = setup.stdout.split(separator: "\n").last.map(String.init) {
            Swift.print("peers: PGQueuer (50,000 jobs, 2 processes, batch 100; pickup at 200 jobs/s)…")
            let run = try await runProcess(python, ["bench/peers/pgqueuer_bench.py"], environment: self.environment(adding: env), timeout: .seconds(300))
            if let json = Self.lastJSON(run.stdout), json["error"] == nil {
                peers.pgqueuerVersion = json["version"] as? String
                peers.pgqueuerDrain = json["drain_jobs_per_s"] as? Double
                peers.pgqueuerWALPerJob = json["wal_bytes_per_job"] as? Double
                peers.pgqueuerPickupP50 = json["pickup_p50_ms"] as? Double
                peers.pgqueuerPickupP99 = json["pickup_p99_ms"] as? Double
            } else {
                Swift.print("peers: PGQueuer failed: \(run.stdout.suffix(300)) \(run.stderr.suffix(1000))")
            }
        } else {
            Swift.print("peers: PGQueuer skipped, bench/peers/setup.sh failed (PyPI unreachable?): \(setup.stderr.suffix(500))")
        }
        Swift.print("peers: minimal claim+complete cycle with pgbench (1,000,000 queued rows, batch 100, 1 and 2 clients)…")
        let minimal = try await runProcess("bench/peers/minimal_cycle.sh", [], environment: self.environment(adding: env), timeout: .seconds(300))
        if let json = Self.lastJSON(minimal.stdout), json["error"] == nil {
            peers.minimalOneClient = json["clients_1_jobs_per_s"] as? Double
            peers.minimalTwoClients = json["clients_2_jobs_per_s"] as? Double
            peers.minimalWALPerJob = json["wal_bytes_per_job"] as? Double
        } else {
            Swift.print("peers: minimal cycle failed: \(minimal.stdout.suffix(300)) \(minimal.stderr.suffix(1000))")
        }
        Swift.print("peers: PGQueuer \(peers.pgqueuerDrain.map { "\(Int($0)) jobs/s" } ?? "-"), minimal cycle \(peers.minimalOneClient.map { "\(Int($0))" } ?? "-") / \(peers.minimalTwoClients.map { "\(Int($0))" } ?? "-") jobs/s")
        return peers
    }

    func environment(adding changes: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for (key, value) in changes { env[key] = value }
        return env
    }

    /// The JSON object on the last line of a peer script's output.
    static func lastJSON(_ output: String) -> [String: Any]? {
        guard let line = output.split(separator: "\n").last else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}
