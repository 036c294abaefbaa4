import Foundation

/// A child process of the package (skipper-runner, skipper-api…) or any executable, for tests and the bench: its
/// output goes to a log file (a chatty child can never block on a full pipe), and it is killed if nobody stopped it.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is only mutated in init; Foundation's Process is thread-safe for the calls used here.
    private let process = Process()
    private let outFile: URL
    private let errFile: URL
    public var pid: Int32 { self.process.processIdentifier }

    /// Starts `executable` (a path, or the name of one of the package's executables) with `arguments`, in
    /// `environment` (default: this process's).
    public init(_ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("skipper-\(UUID().uuidString.prefix(8))")
        self.outFile = base.appendingPathExtension("out")
        self.errFile = base.appendingPathExtension("log")
        _ = FileManager.default.createFile(atPath: self.outFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: self.errFile.path, contents: nil)
        self.process.executableURL = URL(fileURLWithPath: executable.contains("/") ? executable : Executables.path(executable))
        self.process.arguments = arguments
        if let environment { self.process.environment = environment }
        self.process.standardOutput = try FileHandle(forWritingTo: self.outFile)
        self.process.standardError = try FileHandle(forWritingTo: self.errFile)
        self.process.standardInput = FileHandle.nullDevice
        try self.process.run()
    }

    /// One of the package's executables against `url`, in this process's environment changed by `environment`.
    public static func skipper(_ name: String, url: String, environment: [String: String] = [:]) throws -> ChildProcess {
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = url
        env["LOG_LEVEL"] = env["TEST_RUNNER_LOG_LEVEL"] ?? "info"
        for (key, value) in environment { env[key] = value }
        return try ChildProcess(name, environment: env)
    }

    /// skipper-runner against `url` with extra environment (WORKERS, RESCUE_AFTER, ...).
    public static func runner(url: String, environment: [String: String] = [:]) throws -> ChildProcess {
        try Self.skipper("skipper-runner", url: url, environment: environment)
    }

    deinit {
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: self.outFile)
        try? FileManager.default.removeItem(at: self.errFile)
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

    /// What it wrote to stdout so far.
    public var stdout: String { (try? String(contentsOf: self.outFile, encoding: .utf8)) ?? "" }
    /// What it wrote to stderr so far (where Skipper's processes log).
    public var stderr: String { (try? String(contentsOf: self.errFile, encoding: .utf8)) ?? "" }
    /// Both.
    public var log: String { self.stdout + self.stderr }

    /// Stops it gracefully, or kills it after `timeout`.
    public func stop(timeout: Duration = .seconds(10)) async {
        guard self.process.isRunning else { return }
        self.signal(SIGTERM)
        if await self.waitForExit(timeout: timeout) == nil { self.signal(SIGKILL) }
    }

    /// The process's peak resident memory so far (VmHWM), in MiB.
    public var peakRSSMiB: Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(self.pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = line.split(separator: " ").compactMap({ Double($0) }).first
        else { return nil }
        return kib / 1024
    }

}

/// Runs `executable` to completion (at most `timeout`) and returns its exit status and output.
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(600)
) async throws -> ProcessResult {
    let child = try ChildProcess(executable, arguments, environment: environment)
    guard let status = await child.waitForExit(timeout: timeout) else {
        child.signal(SIGKILL)
        throw ProcessTimeout(command: ([executable] + arguments).joined(separator: " "), log: child.log)
    }
    return ProcessResult(status: status, stdout: child.stdout, stderr: child.stderr)
}

/// What a finished process left.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// A process that did not exit in time.
public struct ProcessTimeout: Error, CustomStringConvertible {
    public let command: String
    public let log: String
    public var description: String { "\(self.command) did not exit in time; it wrote: \(self.log.suffix(2000))" }
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
