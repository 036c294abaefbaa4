import Foundation
import Logging
import PostgresNIO
import Skipper

/// `make bench`: Skipper's queue against the raw SQL it needs, on the same PostgreSQL in the same run.
/// Prints a table and writes bench/results/latest.json. Every figure comes from this run; ratios are what travel.
@main
struct Bench {
    static func main() async throws {
        var logger = Logger(label: "skipper.bench")
        logger.logLevel = .warning
        let base = try DatabaseConfig(environment: ProcessInfo.processInfo.environment)
        let config = base.with(database: "skipper_bench")
        try await BenchDatabase.recreate(config, from: base, logger: logger)
        let client = PostgresClient(
            configuration: config.clientConfiguration(maxConnections: 8, applicationName: "skipper-bench"), backgroundLogger: logger)
        let skipper = SkipperClient(postgres: client, logger: logger)
        let report = try await withThrowingTaskGroup(of: Report?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            group.addTask {
                try await skipper.run()
                return nil
            }
            defer { group.cancelAll() }
            let bench = BenchRun(client: client, skipper: skipper, url: config.url(redacted: false), logger: logger)
            return try await bench.all()
        }
        report.print()
        try report.write(to: URL(fileURLWithPath: "bench/results/latest.json"))
        print("\nwritten to bench/results/latest.json")
    }
}

/// One measured figure, and the baseline it is compared with.
struct Measurement: Codable {
    /// How the figure compares with its baseline: as a percentage (rates: higher is better) or as a multiple.
    enum Comparison: String, Codable {
        case percent
        case times
    }

    var name: String
    var value: Double
    var unit: String
    var baseline: String?
    var baselineValue: Double?
    var comparison: Comparison = .percent

    /// value / baseline, in percent.
    var percentOfBaseline: Double? {
        guard let baselineValue, baselineValue > 0 else { return nil }
        return 100 * self.value / baselineValue
    }
}

struct Report: Codable {
    var date = ISO8601DateFormatter().string(from: Date())
    var machine = "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB"
    var postgres = ""
    var measurements: [Measurement] = []

    mutating func add(
        _ name: String, _ value: Double, _ unit: String, _ baseline: String? = nil, _ baselineValue: Double? = nil,
        _ comparison: Measurement.Comparison = .percent
    ) {
        self.measurements.append(Measurement(
            name: name, value: value, unit: unit, baseline: baseline, baselineValue: baselineValue, comparison: comparison))
    }

    func print() {
        Swift.print("Skipper bench — \(self.date) — \(self.machine) — \(self.postgres)")
        Swift.print("")
        let header = "measurement".padding(toLength: 66, withPad: " ", startingAt: 0) + "value".leftPad(12) + "  unit    "
            + "baseline (same run)".padding(toLength: 48, withPad: " ", startingAt: 0) + "ratio".leftPad(8)
        Swift.print(header)
        Swift.print(String(repeating: "-", count: header.count))
        for m in self.measurements {
            var line = m.name.padding(toLength: 66, withPad: " ", startingAt: 0) + String(format: "%.1f", m.value).leftPad(12)
            line += "  " + m.unit.padding(toLength: 8, withPad: " ", startingAt: 0)
            if let baseline = m.baseline {
                let shown = m.baselineValue.map { String(format: $0 < 100 ? "%.2f" : "%.0f", $0) } ?? "n/a"
                line += (baseline + " " + shown).padding(toLength: 48, withPad: " ", startingAt: 0)
                if let value = m.baselineValue, value > 0 {
                    line += (m.comparison == .times ? String(format: "%.2fx", m.value / value) : String(format: "%.0f %%", 100 * m.value / value)).leftPad(8)
                }
            }
            Swift.print(line)
        }
    }

    func write(to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url)
    }
}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: " ", count: max(0, width - self.count)) + self }
}
