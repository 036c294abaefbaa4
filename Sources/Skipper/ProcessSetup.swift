#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a long-running Skipper process sets up before anything else (skipper-api and skipper-runner call it first).
public enum ProcessSetup {
    /// - A write to a closed pipe or socket fails with EPIPE instead of killing the process with SIGPIPE: a log
    ///   reader that goes away (a closed `| tee`, a collector restarted) killed the runner like `kill -9`, its jobs
    ///   left RUNNING until rescued.
    /// - The soft limit of open files is raised to the hard one: every connection (PostgreSQL, HTTP clients, the
    ///   metrics port) is a descriptor, and at Linux's default soft 1024 a burst of connections left none for the
    ///   database.
    public static func prepare() {
        signal(SIGPIPE, SIG_IGN)
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }
}
