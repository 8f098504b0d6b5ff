import BootstrapCore
import BootstrapTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import BootstrapEC2

/// `moto_server`, the EC2 emulator from PyPI (`scripts/test-tools` installs it with the other test tools):
/// `$MOTO_SERVER`, then `$BOOTSTRAP_TOOLS/bin` (default /opt/bootstrap-tools), then `PATH`.
enum Moto {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    static var executable: String? {
        var candidates: [String] = []
        if let p = environment["MOTO_SERVER"], !p.isEmpty { candidates.append(p) }
        candidates.append((environment["BOOTSTRAP_TOOLS"] ?? "/opt/bootstrap-tools") + "/bin/moto_server")
        for dir in (environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/moto_server") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// In CI a missing moto is a failure; elsewhere the tests that need it are skipped.
    static var shouldRun: Bool { executable != nil || environment["CI"] != nil }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

/// A local server process (moto, or a stub) on 127.0.0.1 and a free port, started and stopped off the pool.
final class LocalServer: @unchecked Sendable {
    let process: Process
    let port: Int
    let log: URL
    var endpoint: URL { URL(string: "http://127.0.0.1:\(port)/")! }

    private init(process: Process, port: Int, log: URL) {
        self.process = process
        self.port = port
        self.log = log
    }

    /// moto_server; `environment` adds variables (INITIAL_NO_AUTH_ACTION_COUNT turns on its credential checks).
    static func moto(environment: [String: String] = [:]) async throws -> LocalServer {
        guard let exe = Moto.executable else {
            throw FixtureError(description: "moto_server not found (MOTO_SERVER, $BOOTSTRAP_TOOLS/bin, PATH): "
                               + "run scripts/test-tools, which installs moto[server] into /opt/bootstrap-tools")
        }
        return try await start(exe, environment: environment) { port in ["-H", "127.0.0.1", "-p", String(port)] }
    }

    /// A Python script given as text, run with the port as its argument.
    static func python(_ script: String) async throws -> LocalServer {
        let path = try await onOwnThread { () throws -> String in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("ec2-stub-\(UUID().uuidString).py").path
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        return try await start("/usr/bin/python3", environment: [:]) { port in [path, String(port)] }
    }

    private static func start(_ exe: String, environment: [String: String],
                              arguments: @escaping @Sendable (Int) -> [String]) async throws -> LocalServer {
        try await onOwnThread {
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
    }

    func stop() async {
        _ = try? await onOwnThread { self.stopNow() }
    }

    /// SIGKILL: the servers keep nothing, and a child started from a dispatch thread inherits its blocked
    /// SIGTERM, so `terminate()` would not stop it.
    private func stopNow() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: log)
    }

    static func freePort() throws -> Int {
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

/// Counts the requests it forwards, per action.
final class CountingTransport: HTTPTransport, @unchecked Sendable {
    let inner: any HTTPTransport
    private let lock = NSLock()
    private var actions: [String] = []

    init(_ inner: any HTTPTransport = URLSessionTransport()) { self.inner = inner }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let body = String(decoding: request.body, as: UTF8.self)
        let action = body.split(separator: "&").first { $0.hasPrefix("Action=") }.map { String($0.dropFirst(7)) } ?? "?"
        lock.withLock { actions.append(action) }
        return try await inner.send(request)
    }

    func count(_ action: String) -> Int { lock.withLock { actions.filter { $0 == action }.count } }
}

/// Answers from a list, in order (the last one repeats), recording the requests.
final class CannedTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [HTTPResponse]
    private(set) var requests: [HTTPRequest] = []

    init(_ answers: [(Int, String)]) { self.answers = answers.map { HTTPResponse(status: $0.0, body: Data($0.1.utf8)) } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        lock.withLock {
            requests.append(request)
            return answers.count > 1 ? answers.removeFirst() : answers[0]
        }
    }

    var count: Int { lock.withLock { requests.count } }
}

let testCredentials = AWSCredentials(accessKeyId: "AKIATESTING", secretAccessKey: Secret("test-secret-value-0123456789"),
                                     source: "test")

/// Setting up the emulator's world through the same API client.
extension EC2Client {
    func createVPC(_ cidr: String) async throws -> String {
        let r = try await call("CreateVpc", [.init("CidrBlock", cidr)])
        guard let id = r.child("vpc")?.value("vpcId") else { throw FixtureError(description: "CreateVpc: no vpcId") }
        return id
    }

    func createSubnet(vpc: String, cidr: String) async throws -> String {
        let r = try await call("CreateSubnet", [.init("VpcId", vpc), .init("CidrBlock", cidr),
                                                .init("AvailabilityZone", "\(region)a")])
        guard let id = r.child("subnet")?.value("subnetId") else { throw FixtureError(description: "CreateSubnet") }
        return id
    }

    func createSecurityGroup(vpc: String, name: String) async throws -> String {
        let r = try await call("CreateSecurityGroup", [.init("VpcId", vpc), .init("GroupName", name),
                                                       .init("GroupDescription", "test \(name)")])
        guard let id = r.value("groupId") else { throw FixtureError(description: "CreateSecurityGroup") }
        return id
    }

    /// Runs `count` instances with the tags, in the subnet and groups; returns their ids.
    func runInstances(count: Int = 1, subnet: String, groups: [String], tags: [String: String],
                      privateIp: String? = nil, type: String = "t3.medium") async throws -> [String] {
        var p: [SigV4.QueryItem] = [.init("ImageId", "ami-12c6146b"), .init("MinCount", String(count)),
                                    .init("MaxCount", String(count)), .init("SubnetId", subnet),
                                    .init("InstanceType", type)]
        for (i, g) in groups.enumerated() { p.append(.init("SecurityGroupId.\(i + 1)", g)) }
        if let privateIp { p.append(.init("PrivateIpAddress", privateIp)) }
        p.append(.init("TagSpecification.1.ResourceType", "instance"))
        for (i, (k, v)) in tags.sorted(by: { $0.key < $1.key }).enumerated() {
            p.append(.init("TagSpecification.1.Tag.\(i + 1).Key", k))
            p.append(.init("TagSpecification.1.Tag.\(i + 1).Value", v))
        }
        let r = try await call("RunInstances", p)
        return r.items("instancesSet").compactMap { $0.value("instanceId") }
    }

    func stopInstances(_ ids: [String]) async throws {
        _ = try await call("StopInstances", ids.enumerated().map { .init("InstanceId.\($0.offset + 1)", $0.element) })
    }
}
