import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process of the package (skipper-runner, skipper-api…) or any executable, for tests and the bench: its
/// output goes to a log file (a chatty child can never block on a full pipe), and it is killed if nobody stopped it.
///
/// Spawned with posix_spawn and a clean signal mask and default signal dispositions, as a shell would start it:
/// Foundation's Process passes on the mask of the spawning thread, where Swift's runtime blocks nearly every
/// signal, so a child could not be stopped by SIGTERM and pgbench's -T (SIGALRM) never ended.
public final class ChildProcess: Sendable {
    public let pid: Int32
    private let outFile: URL
    private let errFile: URL
    /// The exit status once reaped.
    private let exit = Mutex<Int32?>(nil)

    /// Starts `executable` (a path, or the name of one of the package's executables) with `arguments`, in
    /// `environment` (default: this process's).
    public init(_ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("skipper-\(UUID().uuidString.prefix(8))")
        self.outFile = base.appendingPathExtension("out")
        self.errFile = base.appendingPathExtension("log")
        let path = executable.contains("/") ? executable : Executables.path(executable)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, self.outFile.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, self.errFile.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for entry in env { free(entry) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, env)
        guard result == 0 else { throw TestSetupError("cannot start \(path): \(String(cString: strerror(result)))") }
        self.pid = pid
    }

    /// One of the package's executables against `url`, in this process's environment changed by `environment`.
    public static func skipper(_ name: String, url: String, environment: [String: String] = [:]) throws -> ChildProcess {
        try ChildProcess(name, environment: Self.environment(url: url, environment))
    }

    /// The environment the package's executables start in: this process's, without its OTEL_* (a CI's would redirect
    /// or break a runner's exporter: the test's own settings only), against `url`, no nightly settlement unless the
    /// test asks for it, changed by `changes`.
    public static func environment(url: String, _ changes: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OTEL_") }
        env["DATABASE_URL"] = url
        env["LOG_LEVEL"] = env["TEST_RUNNER_LOG_LEVEL"] ?? "info"
        env["NIGHTLY_SETTLEMENT"] = "off"
        for (key, value) in changes { env[key] = value }
        return env
    }

    /// skipper-runner against `url` with extra environment (WORKERS, RESCUE_AFTER, ...).
    public static func runner(url: String, environment: [String: String] = [:]) throws -> ChildProcess {
        try Self.skipper("skipper-runner", url: url, environment: environment)
    }

    deinit {
        self.killNow()
        try? FileManager.default.removeItem(at: self.outFile)
        try? FileManager.default.removeItem(at: self.errFile)
    }

    /// Kills it (SIGKILL) and reaps it, at once: for a test's `defer`, which must not leave a process behind when the
    /// test ends early or the test process exits right after (a `Task` started in a `defer` may never run).
    public func killNow() {
        guard self.isRunning else { return }
        kill(self.pid, SIGKILL)
        while self.reap() == nil { usleep(1000) }
    }

    /// Sends a signal (SIGTERM, SIGINT, SIGKILL).
    public func signal(_ signal: Int32) { kill(self.pid, signal) }

    /// Whether it has not exited yet (reaping it when it has).
    public var isRunning: Bool { self.reap() == nil }

    /// The exit status (or 128 + the signal that ended it) once it has exited, reaped once.
    private func reap() -> Int32? {
        self.exit.withLock { exit in
            if let exit { return exit }
            var status: Int32 = 0
            guard waitpid(self.pid, &status, WNOHANG) == self.pid else { return nil }
            // WIFEXITED / WEXITSTATUS / WTERMSIG by hand: the C macros are not imported.
            let signal = status & 0x7f
            exit = signal == 0 ? (status >> 8) & 0xff : 128 + signal
            return exit
        }
    }

    /// Waits for the process to exit; nil when it is still running after `timeout`.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = self.reap() { return status }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// What it wrote to stdout so far.
    public var stdout: String { (try? String(contentsOf: self.outFile, encoding: .utf8)) ?? "" }
    /// What it wrote to stderr so far (where Skipper's processes log).
    public var stderr: String { (try? String(contentsOf: self.errFile, encoding: .utf8)) ?? "" }
    /// Both.
    public var log: String { self.stdout + self.stderr }

    /// Stops it gracefully, or kills it after `timeout`.
    public func stop(timeout: Duration = .seconds(10)) async {
        guard self.isRunning else { return }
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
