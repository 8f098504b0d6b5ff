import BootstrapCore
import BootstrapTransport
import BootstrapTestSupport
@testable import BootstrapSSH
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// These tests start real OpenSSH servers and create local users: they need root and /usr/sbin/sshd.
/// Without them they are skipped on a developer machine, and fail when `CI` is set.
enum Requirements {
    static let sshd = "/usr/sbin/sshd"
    static var available: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: sshd) }
    static var shouldRun: Bool { available || ProcessInfo.processInfo.environment["CI"] != nil }

    static func check() throws {
        guard available else {
            throw FixtureError("SSH tests need root and \(sshd) (install with scripts/deps); CI is set, so this fails")
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `runProgram` for async tests.
@discardableResult
func runAsync(_ path: String, _ arguments: [String], environment: [String: String]? = nil,
              check: Bool = true) async throws -> ProgramOutput {
    try await offPool { try runProgram(path, arguments, environment: environment, check: check) }
}

/// Runs a program and waits for it (blocking: from async code, use `runAsync`); a failure throws unless
/// `check` is false.
@discardableResult
func runProgram(_ path: String, _ arguments: [String], environment: [String: String]? = nil,
                check: Bool = true) throws -> ProgramOutput {
    let result = try Program.run(path, arguments, environment: environment)
    if check && result.status != 0 {
        throw FixtureError("\(path) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
    }
    return result
}

/// A temporary directory removed at the end of the test.
final class TempDir: @unchecked Sendable {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("bootstrap-ssh-tests")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let dir = base.appendingPathComponent(UUID().uuidString.prefix(8).lowercased())
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        chmod(dir.path, 0o755)
        path = dir.path
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String, mode: Int = 0o644) throws -> String {
        let p = file(name)
        try text.write(toFile: p, atomically: false, encoding: .utf8)
        chmod(p, mode_t(mode))
        return p
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A user key pair made by ssh-keygen.
struct UserKey: Sendable {
    var privatePath: String
    var publicLine: String
}

/// Keys shared by all tests of the process (ssh-keygen is slow for RSA).
final class Keys: @unchecked Sendable {
    let dir: TempDir
    let ed25519: UserKey
    let ecdsa: UserKey
    let rsa: UserKey
    let encrypted: UserKey
    let stranger: UserKey
    static let passphrase = "correct horse battery staple"

    private init() throws {
        let dir = try TempDir()
        self.dir = dir
        func make(_ name: String, _ type: String, _ passphrase: String = "", bits: [String] = []) throws -> UserKey {
            let path = dir.file(name)
            try runProgram("/usr/bin/ssh-keygen", ["-q", "-t", type] + bits + ["-N", passphrase, "-C", name, "-f", path])
            let pub = try String(contentsOfFile: path + ".pub", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return UserKey(privatePath: path, publicLine: pub)
        }
        ed25519 = try make("id_ed25519", "ed25519")
        ecdsa = try make("id_ecdsa", "ecdsa", bits: ["-b", "256"])
        rsa = try make("id_rsa", "rsa", bits: ["-b", "2048"])
        encrypted = try make("id_encrypted", "ed25519", Keys.passphrase)
        stranger = try make("id_stranger", "ed25519")
    }

    nonisolated(unsafe) private static var cached: Keys?
    private static let lock = NSLock()

    /// `shared()` off the cooperative pool.
    static func load() async throws -> Keys { try await offPool { try Keys.shared() } }

    static func shared() throws -> Keys {
        try Requirements.check()
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let keys = try Keys()
        cached = keys
        return keys
    }

    /// Every key but the stranger's.
    var authorized: [UserKey] { [ed25519, ecdsa, rsa, encrypted] }
}

/// Picks loopback addresses in 127.0.1.0/24 (never 127.0.0.x: that is the lab's) and free ports.
enum Loopback {
    nonisolated(unsafe) private static var next = 10 + Int(getpid() % 100)
    private static let lock = NSLock()

    static func address() -> String {
        lock.lock()
        defer { lock.unlock() }
        next = next >= 250 ? 10 : next + 1
        return "127.0.1.\(next)"
    }

    /// A port that is free on `address` right now (the kernel's choice).
    static func freePort(on address: String) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, address, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw FixtureError("bind \(address): \(String(cString: strerror(errno)))") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// A listening socket that accepts connections (the kernel does) but never says anything.
    static func silentListener(backlog: Int32 = 16) throws -> (fd: Int32, address: String, port: Int) {
        let address = Loopback.address()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, address, &addr.sin_addr)
        var rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw FixtureError("bind: \(String(cString: strerror(errno)))") }
        rc = listen(fd, backlog)
        guard rc == 0 else { close(fd); throw FixtureError("listen: \(String(cString: strerror(errno)))") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return (fd, address, Int(UInt16(bigEndian: addr.sin_port)))
    }

    static func canConnect(_ address: String, _ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, address, &addr.sin_addr)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// A real OpenSSH server on a loopback address, with a throwaway host key. Stopped by `stop()` (tests
/// call it in a `defer`) or when the object goes away.
final class SSHD: @unchecked Sendable {
    let dir: TempDir
    let address: String
    let port: Int
    let hostKeyPath: String
    let process: Child
    private var stopped = false

    init(hostKeyType: String = "ed25519", authorized: [UserKey]? = nil, extraConfig: [String] = [],
         logLevel: String = "INFO") throws {
        try Requirements.check()
        let keys = try Keys.shared()
        dir = try TempDir()
        address = Loopback.address()
        port = try Loopback.freePort(on: address)
        hostKeyPath = dir.file("host_key")
        try runProgram("/usr/bin/ssh-keygen", ["-q", "-t", hostKeyType, "-N", "", "-f", hostKeyPath])
        let authorizedKeys = (authorized ?? keys.authorized).map(\.publicLine).joined(separator: "\n") + "\n"
        _ = try dir.write("authorized_keys", authorizedKeys, mode: 0o644)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let config = ([
            "ListenAddress \(address):\(port)",
            "HostKey \(hostKeyPath)",
            "PidFile \(dir.file("sshd.pid"))",
            "AuthorizedKeysFile \(dir.file("authorized_keys"))",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "MaxStartups 300:30:400",
            "MaxSessions 100",
            "MaxAuthTries 10",
            "UseDNS no",
            "LogLevel \(logLevel)",
            "Subsystem sftp internal-sftp",
        ] + extraConfig).joined(separator: "\n") + "\n"
        let configPath = try dir.write("sshd_config", config)
        let log = dir.file("sshd.log")
        // The server runs in a mount namespace of its own where root's ~/.bashrc is empty: sshd's bash
        // sources it for every command, and this machine's (pyenv init, which takes a lock file in rehash)
        // made concurrent sessions wait on each other for seconds, or for a minute after a killed command
        // left that lock behind. The product must not depend on a login shell's start-up files; the
        // `RemoteProcess` unit tests cover start-up files that write to stderr.
        process = try Child.spawn("/usr/bin/unshare", [
            "--mount", "--propagation", "private", "/bin/sh", "-c",
            "[ -f /root/.bashrc ] && mount --bind /dev/null /root/.bashrc; exec \"$0\" \"$@\"",
            Requirements.sshd, "-D", "-e", "-f", configPath,
        ], stderrPath: log)
        let deadline = Date().addingTimeInterval(10)
        while !Loopback.canConnect(address, port) {
            if !process.isRunning || Date() > deadline {
                stop()
                throw FixtureError("sshd on \(address):\(port) did not start: \(self.log)")
            }
            usleep(20_000)
        }
    }

    /// Starts a server (see `init`) off the cooperative pool.
    static func start(hostKeyType: String = "ed25519", authorized: [UserKey]? = nil, extraConfig: [String] = [],
                      logLevel: String = "INFO") async throws -> SSHD {
        try await offPool {
            try SSHD(hostKeyType: hostKeyType, authorized: authorized, extraConfig: extraConfig, logLevel: logLevel)
        }
    }

    var log: String { (try? String(contentsOfFile: dir.file("sshd.log"), encoding: .utf8)) ?? "" }

    /// The server's public key as `TYPE BASE64`.
    var publicKey: String {
        let line = (try? String(contentsOfFile: hostKeyPath + ".pub", encoding: .utf8)) ?? ""
        return line.split(separator: " ").prefix(2).joined(separator: " ")
    }

    /// `SHA256:…` as ssh-keygen prints it.
    var fingerprint: String {
        let out = (try? runProgram("/usr/bin/ssh-keygen", ["-l", "-E", "sha256", "-f", hostKeyPath + ".pub"]).stdout) ?? ""
        return out.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
    }

    var knownHostsLine: String { "[\(address)]:\(port) \(publicKey)\n" }

    /// A known_hosts file that trusts this server.
    func knownHostsFile() throws -> String { try dir.write("known_hosts", knownHostsLine) }

    func stop() {
        if stopped { return }
        stopped = true
        process.terminate()
    }

    deinit { stop() }
}

/// A child process started with posix_spawn. (Foundation's `Process` must not be used for daemons that
/// close inherited descriptors, like sshd and ssh-agent: it then believes they exited and blocks in waitpid,
/// which stalls every other `Process` of the test run.)
final class Child: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var reaped = false

    private init(pid: pid_t) { self.pid = pid }

    static func spawn(_ path: String, _ arguments: [String], stderrPath: String? = nil) throws -> Child {
        Child.reapOrphans()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // Threads of the test process block signals; the child must start with none blocked.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw FixtureError("cannot start \(path): \(String(cString: strerror(rc)))") }
        return Child(pid: pid)
    }

    var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if reaped { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { reaped = true; return false }
        return true
    }

    /// Sends SIGTERM and returns; a thread of its own reaps the process (SIGKILL after two seconds).
    func terminate() {
        lock.lock()
        defer { lock.unlock() }
        if reaped { return }
        reaped = true
        kill(pid, SIGTERM)
        let pid = self.pid
        Thread.detachNewThread {
            var status: Int32 = 0
            for _ in 0..<200 {
                if waitpid(pid, &status, WNOHANG) == pid { return }
                usleep(10_000)
            }
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
        }
    }

    /// sshd processes left behind by an earlier test run that was killed (their parent is gone): found by
    /// their config path under our temporary directory, and stopped.
    private static let reapOnce: Void = {
        let marker = "/bootstrap-ssh-tests/"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        for entry in entries {
            guard let pid = pid_t(entry), pid != getpid(),
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8) else { continue }
            let words = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard words.first?.hasPrefix("sshd") == true || words.first == Requirements.sshd,
                  words.contains(where: { $0.contains(marker) }) else { continue }
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            if fields.count > 1, fields[1] == "1" { kill(pid, SIGTERM) }
        }
    }()

    static func reapOrphans() { _ = reapOnce }

    deinit { terminate() }
}

/// Local users for the non-root cases: one with passwordless sudo, one without.
enum TestUsers {
    static let withSudo = "bsshsudo"
    static let withoutSudo = "bsshnosudo"
    /// One file per test process (sudo skips names with a dot), so that two runs do not revoke each other.
    static let sudoers = "/etc/sudoers.d/bootstrap-ssh-tests-\(getpid())"

    static func ensure() throws {
        for user in [withSudo, withoutSudo] {
            if (try? runProgram("/usr/bin/id", ["-u", user], check: false))?.status != 0 {
                try runProgram("/usr/sbin/useradd", ["-m", "-s", "/bin/sh", user])
            }
            // sshd without PAM refuses a locked account (`!`); `*` means "no password, not locked".
            try runProgram("/usr/sbin/usermod", ["-p", "*", user])
        }
    }

    /// Installs the sudoers entry for `withSudo`; the returned closure removes it.
    static func grantSudo() throws -> () -> Void {
        try "\(withSudo) ALL=(ALL) NOPASSWD: ALL\n".write(toFile: sudoers, atomically: false, encoding: .utf8)
        chmod(sudoers, 0o440)
        return { try? FileManager.default.removeItem(atPath: sudoers) }
    }
}

/// Collects transport notices (host key added, checking off).
final class Notices: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func add(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}

func testOptions(notices: Notices = Notices(), environment: [String: String] = [:], agent: String? = nil,
                 passphrase: PassphraseProvider? = nil) -> SSHTransport.Options
{
    SSHTransport.Options(environment: environment, agentSocketPath: agent, passphrase: passphrase,
                         keepaliveInterval: 15, notice: { notices.add($0) })
}

func endpoint(_ server: SSHD, name: String = "worker-1", user: String = "root", key: String?,
              knownHosts: String, policy: ClusterPlan.HostKeyPolicy = .strict, useAgent: Bool = false,
              passphraseVariable: String? = nil, bastion: HostEndpoint? = nil,
              timeout: Duration = .seconds(5)) -> HostEndpoint {
    HostEndpoint(name: name, address: server.address, port: server.port, user: user, keyPath: key,
                 passphraseEnvironment: passphraseVariable, useAgent: useAgent, knownHostsPath: knownHosts,
                 hostKeyPolicy: policy, bastion: bastion, connectTimeout: timeout)
}

/// Expects `body` to throw an `SSHError` and returns it.
func expectSSHError(_ body: () async throws -> Void, sourceLocation: Testing.SourceLocation = #_sourceLocation) async
    -> SSHError?
{
    do {
        try await body()
        Issue.record("expected an SSHError, got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as SSHError {
        return error
    } catch {
        Issue.record("expected an SSHError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Random bytes, quickly.
func randomData(_ count: Int) -> Data {
    var generator = SystemRandomNumberGenerator()
    var data = Data(count: count)
    data.withUnsafeMutableBytes { raw in
        var i = 0
        while i + 8 <= count {
            raw.storeBytes(of: generator.next(), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < count { raw[i] = UInt8.random(in: 0...255); i += 1 }
    }
    return data
}
