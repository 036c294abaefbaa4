import Foundation

/// A real skipper-runner process for a test; killed when the test forgets to stop it.
public final class RunnerProcess: @unchecked Sendable {
    // @unchecked: `process` is only mutated in init; Foundation's Process is thread-safe for the calls used here.
    private let process = Process()
    private let logFile: URL
    public var pid: Int32 { self.process.processIdentifier }

    /// Starts skipper-runner against `url` with extra environment (WORKERS, RESCUE_AFTER, ...).
    public init(url: String, environment: [String: String] = [:]) throws {
        self.logFile = FileManager.default.temporaryDirectory.appendingPathComponent("skipper-runner-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: self.logFile.path, contents: nil)
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = url
        env["LOG_LEVEL"] = env["TEST_RUNNER_LOG_LEVEL"] ?? "info"
        for (key, value) in environment { env[key] = value }
        self.process.executableURL = URL(fileURLWithPath: Executables.path("skipper-runner"))
        self.process.environment = env
        let handle = try FileHandle(forWritingTo: self.logFile)
        self.process.standardOutput = handle
        self.process.standardError = handle
        self.process.standardInput = FileHandle.nullDevice
        try self.process.run()
    }

    deinit {
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: self.logFile)
    }

    /// Sends a signal (SIGTERM, SIGINT, SIGKILL).
    public func signal(_ signal: Int32) { kill(self.process.processIdentifier, signal) }

    public var isRunning: Bool { self.process.isRunning }

    /// Waits for the process to exit; nil when it is still running after `timeout`.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while self.process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return self.process.terminationStatus
    }

    /// What it logged so far.
    public var log: String { (try? String(contentsOf: self.logFile, encoding: .utf8)) ?? "" }

    /// Stops it gracefully, or kills it after `timeout`.
    public func stop(timeout: Duration = .seconds(10)) async {
        guard self.process.isRunning else { return }
        self.signal(SIGTERM)
        if await self.waitForExit(timeout: timeout) == nil { self.signal(SIGKILL) }
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(
    timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}
