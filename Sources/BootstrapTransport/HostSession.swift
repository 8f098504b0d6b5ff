import BootstrapCore
import Foundation

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

/// An error about one host. `description` names the host; `detail` says the rest, for a line that already
/// names it (that host's event, its summary row): a host is named once, whatever the layer the error came from.
public protocol HostScopedError: Error, CustomStringConvertible {
    /// The host's name in the plan, when the error is about one.
    var hostName: String? { get }
    /// The message without the host's name.
    var detail: String { get }
}
