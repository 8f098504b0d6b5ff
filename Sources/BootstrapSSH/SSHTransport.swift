import BootstrapCore
import BootstrapTransport
import Foundation

// BootstrapSSH: the SSH transport on libssh2 (1.10).
//
// - `SSHTransport(options:).connect(endpoint)` opens one `SSHSession` per host, reused for every step. Each session
//   owns a thread; its libssh2 session is non-blocking and every wait is a `poll` on the socket with a
//   deadline, so connect/handshake/command time-outs and task cancellation all work the same way, and
//   Swift's cooperative pool never blocks in C.
// - Host keys: OpenSSH known_hosts (plain, hashed, `[host]:port`, `@revoked`) through libssh2_knownhost_*;
//   policies strict / accept-new / off. Auth: key file (passphrase from the endpoint's variable or the
//   `Options.passphrase` provider the CLI gives), then ssh-agent. libssh2 1.10 signs RSA user keys with
//   SHA-1 `ssh-rsa` only: prefer ed25519/ecdsa.
// - `run` wraps privileged commands in `sudo -n sh -c` for non-root users and reads stdout and stderr in one
//   loop; `upload` writes over SFTP to a temp file and renames it into place (via `sudo install` when not
//   root); `download` reads over SFTP, or through `sudo -n cat` when the user may not read the file.
// - Bastion: a direct-tcpip channel on the bastion's session, pumped through a socket pair whose other end
//   carries the target's SSH session.
// - Nothing here prints or prompts: notices and passphrase requests go through `SSHTransport.Options`.
// - `Connection` (one file per concern: connect, auth, exec, sudo, SFTP, tunnel, waiting) holds the libssh2 work.

/// Asks the person running bootstrap for a key file's passphrase (the CLI reads it from the terminal); nil when
/// there is no one to ask. Called on the session's own thread, which may block while the person types.
public typealias PassphraseProvider = @Sendable (_ keyPath: String) -> String?

/// The real transport: libssh2 sessions, one per host, each on its own thread. It never prints and never
/// prompts: what it has to say goes to `Options.notice`, a passphrase it needs comes from `Options.passphrase`.
public struct SSHTransport: HostTransport {
    public struct Options: Sendable {
        /// Where passphrase variables (`HostEndpoint.passphraseEnvironment`) and `SSH_AUTH_SOCK` are read.
        public var environment: [String: String]
        /// The ssh-agent socket; `nil`: `SSH_AUTH_SOCK` from `environment`.
        public var agentSocketPath: String?
        /// Asked for a key's passphrase when libssh2 cannot load the key without one and no variable holds it;
        /// nil: never ask.
        public var passphrase: PassphraseProvider?
        /// Seconds between SSH keepalives on an idle session (0: none).
        public var keepaliveInterval: Int
        /// Receives notices: host keys added (accept-new), the warning when host key checking is off.
        public var notice: @Sendable (String) -> Void

        public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                    agentSocketPath: String? = nil, passphrase: PassphraseProvider? = nil, keepaliveInterval: Int = 15,
                    notice: @escaping @Sendable (String) -> Void) {
            self.environment = environment
            self.agentSocketPath = agentSocketPath
            self.passphrase = passphrase
            self.keepaliveInterval = keepaliveInterval
            self.notice = notice
        }
    }

    public var options: Options

    public init(options: Options) {
        self.options = options
    }

    public func connect(_ endpoint: HostEndpoint) async throws -> any HostSession {
        try await SSHSession.open(endpoint, options: options)
    }
}

/// One SSH connection to one host. Its libssh2 work runs on a thread of its own; calls are served one at a
/// time in the order they arrive.
public final class SSHSession: HostSession, @unchecked Sendable {
    public let endpoint: HostEndpoint
    private let worker: SessionThread
    private let connection: Connection
    private let lock = NSLock()
    private var closed = false

    private init(endpoint: HostEndpoint, worker: SessionThread, connection: Connection) {
        self.endpoint = endpoint
        self.worker = worker
        self.connection = connection
    }

    deinit {
        if !closed {
            let connection = self.connection
            worker.submit { connection.shutdown() }
            worker.stop()
        }
    }

    /// Connects (through the bastion when there is one), checks the host key and authenticates.
    public static func open(_ endpoint: HostEndpoint, options: SSHTransport.Options) async throws
        -> SSHSession
    {
        let (worker, connection) = try await establish(endpoint, options: options)
        if options.keepaliveInterval > 0 {
            worker.setIdleHandler { connection.keepalive() }
        }
        return SSHSession(endpoint: endpoint, worker: worker, connection: connection)
    }

    /// A connected, authenticated connection on its own thread; through its bastion (itself reached the
    /// same way, so hops chain) when it has one.
    private static func establish(_ endpoint: HostEndpoint, options: SSHTransport.Options) async throws
        -> (SessionThread, Connection)
    {
        var tunnelSocket: Int32?
        if let bastion = endpoint.bastion?.value {
            let (bastionWorker, bastionConnection) = try await establish(bastion, options: options)
            do {
                tunnelSocket = try await bastionWorker.perform { try bastionConnection.openTunnel(to: endpoint) }
            } catch {
                bastionWorker.submit { bastionConnection.shutdown() }
                bastionWorker.stop()
                throw error
            }
            // The bastion's thread now carries the tunnel until the target session closes its end.
            bastionWorker.submit {
                bastionConnection.pumpTunnel()
                bastionConnection.shutdown()
            }
            bastionWorker.stop()
        }
        let worker = SessionThread(name: "ssh \(endpoint.name)",
                                   idleInterval: TimeInterval(max(options.keepaliveInterval, 1)))
        let connection = Connection(endpoint: endpoint, options: options)
        do {
            let socket = tunnelSocket
            try await worker.perform { try connection.establish(socket: socket) }
        } catch {
            worker.submit { connection.shutdown() }
            worker.stop()
            throw error
        }
        return (worker, connection)
    }

    public func run(_ command: ShellCommand, stdin: Data?, timeout: Duration?, output: OutputHandler?) async throws
        -> CommandResult
    {
        let connection = self.connection
        let cancellation = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await worker.perform {
                try connection.run(command, stdin: stdin, timeout: timeout, output: output, cancellation: cancellation)
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    public func upload(_ data: Data, to path: String, mode: Int) async throws {
        let connection = self.connection
        let cancellation = CancellationFlag()
        try await withTaskCancellationHandler {
            try await worker.perform { try connection.upload(data, to: path, mode: mode, cancellation: cancellation) }
        } onCancel: {
            cancellation.cancel()
        }
    }

    public func download(_ path: String) async throws -> Data {
        let connection = self.connection
        let cancellation = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await worker.perform { try connection.download(path, cancellation: cancellation) }
        } onCancel: {
            cancellation.cancel()
        }
    }

    public func close() async {
        if markClosed() { return }
        let connection = self.connection
        _ = try? await worker.perform { connection.shutdown() }
        worker.stop()
    }

    /// Marks the session closed; returns whether it already was.
    private func markClosed() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let already = closed
        closed = true
        return already
    }

    /// The command line this session sends for `command` (with `sudo -n` when needed). For logs and tests.
    public func commandLine(for command: ShellCommand) -> String {
        connection.commandLine(command)
    }
}
