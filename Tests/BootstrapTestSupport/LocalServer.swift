import Foundation

/// `moto_server`, the EC2 emulator from PyPI (`scripts/test-tools` installs it with the other test tools):
/// `$MOTO_SERVER`, then `$BOOTSTRAP_TOOLS/bin` (default /opt/bootstrap-tools), then `PATH`.
public enum Moto {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    public static var executable: String? {
        var candidates: [String] = []
        if let p = environment["MOTO_SERVER"], !p.isEmpty { candidates.append(p) }
        candidates.append((environment["BOOTSTRAP_TOOLS"] ?? "/opt/bootstrap-tools") + "/bin/moto_server")
        for dir in (environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/moto_server") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The Python of moto's virtual environment (it has boto3, moto's own dependency), beside `moto_server`.
    public static var python: String? {
        executable.map { URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("python").path }
    }

    /// In CI a missing moto is a failure; elsewhere the tests that need it are skipped.
    public static var shouldRun: Bool { executable != nil || environment["CI"] != nil }
}

public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// A local server process (moto, or a stub) on 127.0.0.1 and a free port, started and stopped off the pool.
public final class LocalServer: @unchecked Sendable {
    let process: Process
    public let port: Int
    let log: URL
    public var endpoint: URL { URL(string: "http://127.0.0.1:\(port)/")! }

    private init(process: Process, port: Int, log: URL) {
        self.process = process
        self.port = port
        self.log = log
    }

    /// moto_server; `environment` adds variables (INITIAL_NO_AUTH_ACTION_COUNT turns on its credential checks).
    public static func moto(environment: [String: String] = [:]) async throws -> LocalServer {
        try await onOwnThread { try motoNow(environment: environment) }
    }

    /// `moto()` for a test body that already runs on a thread of its own (`onOwnThread`): it blocks.
    public static func motoNow(environment: [String: String] = [:]) throws -> LocalServer {
        guard let exe = Moto.executable else {
            throw FixtureError(description: "moto_server not found (MOTO_SERVER, $BOOTSTRAP_TOOLS/bin, PATH): "
                               + "run scripts/test-tools, which installs moto[server] into /opt/bootstrap-tools")
        }
        return try startNow(exe, environment: environment) { port in ["-H", "127.0.0.1", "-p", String(port)] }
    }

    /// A Python script given as text, run with the port as its argument.
    public static func python(_ script: String) async throws -> LocalServer {
        let path = try await onOwnThread { () throws -> String in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("ec2-stub-\(UUID().uuidString).py").path
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        return try await onOwnThread { try startNow("/usr/bin/python3", environment: [:]) { port in [path, String(port)] } }
    }

    /// Blocks until the server accepts connections: call it on a thread of its own.
    private static func startNow(_ exe: String, environment: [String: String],
                                 arguments: (Int) -> [String]) throws -> LocalServer {
        let port = try freePort()
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("ec2-server-\(port)-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let out = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = arguments(port)
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let server = LocalServer(process: p, port: port, log: log)
        let deadline = Date().addingTimeInterval(60)
        while !canConnect(port) {
            if !p.isRunning || Date() > deadline {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                server.stopNow()
                throw FixtureError(description: "\(exe) did not start on port \(port): \(text.suffix(1500))")
            }
            usleep(100_000)
        }
        return server
    }

    public func stop() async {
        _ = try? await onOwnThread { self.stopNow() }
    }

    /// SIGKILL: the servers keep nothing, and a child started from a dispatch thread inherits its blocked
    /// SIGTERM, so `terminate()` would not stop it. Blocks until it is gone: on a thread of its own.
    public func stopNow() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: log)
    }

    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError(description: "socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw FixtureError(description: "bind() failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

