import BootstrapCore
import Foundation

/// Everything a transport needs to reach one host. Built by the CLI from the plan.
public struct HostEndpoint: Sendable, Hashable {
    public var name: String
    public var address: String
    public var port: Int
    public var user: String
    /// Private key file (already `~`-expanded). Its passphrase, if any, comes from `passphraseEnvironment`.
    public var keyPath: String?
    /// Environment variable holding the key's passphrase.
    public var passphraseEnvironment: String?
    /// Try ssh-agent (`SSH_AUTH_SOCK`) after the key file.
    public var useAgent: Bool
    /// OpenSSH known_hosts file (already `~`-expanded).
    public var knownHostsPath: String
    public var hostKeyPolicy: ClusterPlan.HostKeyPolicy
    /// Reach this host through another one (direct-tcpip).
    public var bastion: Box<HostEndpoint>?
    public var connectTimeout: Duration

    public init(name: String, address: String, port: Int = 22, user: String, keyPath: String? = nil,
                passphraseEnvironment: String? = "BOOTSTRAP_SSH_PASSPHRASE", useAgent: Bool = true,
                knownHostsPath: String, hostKeyPolicy: ClusterPlan.HostKeyPolicy = .strict,
                bastion: HostEndpoint? = nil, connectTimeout: Duration = .seconds(10)) {
        self.name = name
        self.address = address
        self.port = port
        self.user = user
        self.keyPath = keyPath
        self.passphraseEnvironment = passphraseEnvironment
        self.useAgent = useAgent
        self.knownHostsPath = knownHostsPath
        self.hostKeyPolicy = hostKeyPolicy
        self.bastion = bastion.map(Box.init)
        self.connectTimeout = connectTimeout
    }

    /// `NAME (ADDR:PORT)`, the way errors name a host.
    public var label: String { "\(name) (\(address):\(port))" }
}

/// An indirection so a value type can hold another of its own type.
public final class Box<T: Sendable & Hashable>: Sendable, Hashable {
    public let value: T
    public init(_ value: T) { self.value = value }
    public static func == (a: Box, b: Box) -> Bool { a.value == b.value }
    public func hash(into h: inout Hasher) { h.combine(value) }
}

/// The result of a remote command.
public struct CommandResult: Sendable, Hashable {
    public var exitStatus: Int32
    /// Name of the signal that ended the command (`KILL`, `TERM`, …), if one did.
    public var exitSignal: String?
    public var stdout: Data
    public var stderr: Data

    public init(exitStatus: Int32, exitSignal: String? = nil, stdout: Data = Data(), stderr: Data = Data()) {
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
        self.stdout = stdout
        self.stderr = stderr
    }

    public var succeeded: Bool { exitStatus == 0 && exitSignal == nil }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

public enum OutputStream: Sendable, Hashable { case stdout, stderr }

/// Receives output lines as they arrive (for live progress and per-host logs). Called from the session's
/// own thread; must not block.
public typealias OutputHandler = @Sendable (OutputStream, String) -> Void

/// One open connection to one host, reused for every step of a run. Not used from two tasks at once.
public protocol HostSession: AnyObject, Sendable {
    var endpoint: HostEndpoint { get }

    /// Runs `command` (through `sudo -n` when it is privileged and the user is not root) and waits for it.
    /// A non-zero exit is a result, not an error; errors are transport failures and time-outs.
    func run(_ command: ShellCommand, stdin: Data?, timeout: Duration?, output: OutputHandler?) async throws
        -> CommandResult

    /// Writes `data` to `path` with `mode`, atomically (temp file + rename), as root when needed.
    func upload(_ data: Data, to path: String, mode: Int) async throws

    /// Reads a remote file (as root when needed).
    func download(_ path: String) async throws -> Data

    func close() async
}

extension HostSession {
    public func run(_ command: ShellCommand) async throws -> CommandResult {
        try await run(command, stdin: nil, timeout: nil, output: nil)
    }
}

/// Opens sessions. The SSH transport is the real one; tests use fakes.
public protocol HostTransport: Sendable {
    func connect(_ endpoint: HostEndpoint) async throws -> any HostSession
}

/// How a transport error came about, so the engine can tell a time-out or a cancellation from a lost connection.
public enum TransportFailure: Sendable { case timedOut, cancelled, other }

/// Errors of a transport that know their `TransportFailure`.
public protocol ClassifiedTransportError: Error {
    var transportFailure: TransportFailure { get }
}
