import Foundation
import Skipper

/// A port on 127.0.0.1 that nothing listens on now (the kernel's choice), for a server a test starts: a random
/// pick from a range collided now and then with a port in use ("Address already in use").
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : Int.random(in: 20000..<40000)
}

/// Debian's PgBouncer in **transaction** pooling mode in front of the test cluster, started by a test on a free port
/// of 127.0.0.1 and killed when the test lets go of it: every database of the cluster, as its user, trusted (the
/// cluster trusts that user too). As root it runs as the cluster's system user (it refuses to run as root).
public final class PgBouncer: Sendable {
    public let port: Int
    let process: ChildProcess
    let directory: URL

    /// Starts one in front of `server` with `poolSize` server connections per database and user; returns once it
    /// answers.
    public static func start(in front: DatabaseConfig, poolSize: Int = 20) async throws -> PgBouncer {
        guard let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestSetupError("pgbouncer is not installed (apt-get install pgbouncer)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("skipper-pgbouncer-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let port = freePort()
        let users = directory.appendingPathComponent("users.txt")
        try "\"\(front.username)\" \"\(front.password ?? "")\"\n".write(to: users, atomically: true, encoding: .utf8)
        let ini = directory.appendingPathComponent("pgbouncer.ini")
        try """
            [databases]
            * = host=\(front.host) port=\(front.port)

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = trust
            auth_file = \(users.path)
            pool_mode = transaction
            default_pool_size = \(poolSize)
            max_client_conn = 1000
            server_reset_query =
            server_check_delay = 0
            log_connections = 0
            log_disconnections = 0

            """.write(to: ini, atomically: true, encoding: .utf8)
        for file in [users, ini] { try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path) }
        let process: ChildProcess
        if getuid() == 0 {
            process = try ChildProcess(binary, ["-u", "skipper-pg", ini.path])
        } else {
            process = try ChildProcess(binary, [ini.path])
        }
        let bouncer = PgBouncer(port: port, process: process, directory: directory)
        // Up when its port takes a connection.
        let deadline = ContinuousClock.now + .seconds(10)
        // Up when its port takes a connection and it says it listens (another process on the port would take the
        // connection while PgBouncer exits).
        while !(Self.accepts(port: port) && process.log.contains("listening on")) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw TestSetupError("pgbouncer did not start: \(process.log.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return bouncer
    }

    private init(port: Int, process: ChildProcess, directory: URL) {
        self.port = port
        self.process = process
        self.directory = directory
    }

    deinit {
        self.process.killNow()
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// `database` reached through this PgBouncer.
    public func config(for database: DatabaseConfig) -> DatabaseConfig {
        var config = database
        config.host = "127.0.0.1"
        config.port = self.port
        return config
    }

    /// What it logged.
    public var log: String { self.process.log }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
