#if canImport(Glibc)
import Glibc
#endif
import BootstrapCore
import BootstrapEngine
import CLibSSH2
import Foundation

/// libssh2 is initialised once per process.
enum LibSSH2 {
    private static let initialised: Bool = { libssh2_init(0) == 0 }()
    static func initialise() { _ = initialised }
}

/// When a blocking wait must give up, and what to report then.
struct Deadline {
    var instant: ContinuousClock.Instant?
    var error: () -> SSHError
    /// Set when the calling task was cancelled: waiting stops with a `.cancelled` error.
    var cancellation: CancellationFlag?

    static func after(_ duration: Duration?, error: @escaping () -> SSHError) -> Deadline {
        Deadline(instant: duration.map { ContinuousClock.now + $0 }, error: error)
    }
}

/// Raised from any thread when the task waiting for a command is cancelled; read by the session thread.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false

    func raise() {
        lock.lock()
        raised = true
        lock.unlock()
    }

    var isRaised: Bool {
        lock.lock()
        defer { lock.unlock() }
        return raised
    }
}

/// One libssh2 session on one socket. Used from a single thread (its `SessionThread`); the session is
/// non-blocking and every wait is a `poll` on the socket with a deadline.
final class Connection: @unchecked Sendable {
    let endpoint: HostEndpoint
    let options: SSHTransport.Options
    private(set) var session: OpaquePointer?
    private var fd: Int32 = -1
    private var sftp: OpaquePointer?
    /// Set for a bastion connection that carries a tunnel.
    private var tunnelChannel: OpaquePointer?
    private var tunnelFD: Int32 = -1
    /// Channels closed after a time-out whose close sshd has not answered yet.
    private var parked: [OpaquePointer] = []

    init(endpoint: HostEndpoint, options: SSHTransport.Options) {
        self.endpoint = endpoint
        self.options = options
    }

    deinit { shutdown() }

    var label: String { endpoint.label }
    private var isRoot: Bool { endpoint.user == "root" }

    // MARK: - Connect

    /// TCP connect (unless `socket` is given: the local end of a tunnel), handshake, host key, auth.
    func establish(socket given: Int32?) throws {
        LibSSH2.initialise()
        let timeout = endpoint.connectTimeout
        let timedOut = {
            SSHError(.connectTimeout, host: self.label,
                     message: "host \(self.label): connection timed out after \(timeout.shortSeconds)")
        }
        let deadline = Deadline.after(timeout, error: timedOut)
        if let given {
            fd = given
        } else {
            do {
                fd = try Net.connect(host: endpoint.address, port: endpoint.port, deadline: deadline.instant!)
            } catch {
                switch error {
                case .timedOut: throw timedOut()
                case .resolve(let why):
                    throw SSHError(.resolve, host: label, message: "host \(label): cannot resolve \(endpoint.address): \(why)")
                case .refused(let why):
                    throw SSHError(.connectRefused, host: label, message: "host \(label): connection refused (\(why))")
                case .failed(let why):
                    throw SSHError(.connect, host: label, message: "host \(label): cannot connect: \(why)")
                }
            }
        }
        guard let s = bs_session_init() else {
            throw SSHError(.handshake, host: label, message: "host \(label): libssh2 could not create a session")
        }
        session = s
        libssh2_session_set_blocking(s, 0)
        try KnownHosts.preferKnownTypes(session: s, endpoint: endpoint)
        do {
            try call(deadline, what: "SSH handshake", kind: .handshake) { libssh2_session_handshake(s, self.fd) }
        } catch let error as SSHError where error.kind == .connectTimeout {
            var e = error
            e.libssh2Message = "the server accepted the TCP connection but did not complete the SSH handshake"
            throw e
        }
        try KnownHosts.verify(session: s, endpoint: endpoint, notice: options.notice)
        try authenticate(deadline)
        if options.keepaliveInterval > 0 {
            libssh2_keepalive_config(s, 1, UInt32(options.keepaliveInterval))
        }
    }

    /// Sends a keepalive if one is due (called when the session is idle).
    func keepalive() {
        guard let s = session else { return }
        var next: Int32 = 0
        _ = libssh2_keepalive_send(s, &next)
    }

    // MARK: - Authentication

    private func authenticate(_ connectDeadline: Deadline) throws {
        var deadline = connectDeadline
        guard let s = session else { throw closedError() }
        let user = endpoint.user
        var serverMethods = ""
        while true {
            if let list = libssh2_userauth_list(s, user, UInt32(user.utf8.count)) {
                serverMethods = String(cString: list)
                break
            }
            if libssh2_userauth_authenticated(s) != 0 { return }
            let err = libssh2_session_last_errno(s)
            if err != BS_EAGAIN { throw failure(.authentication, "asking for authentication methods", err) }
            try wait(deadline)
        }
        var tried: [String] = []

        if let keyPath = endpoint.keyPath {
            let description = "publickey file \(keyPath)"
            if !FileManager.default.fileExists(atPath: keyPath) {
                tried.append("\(description) (no such file)")
            } else {
                var passphrase: String?
                var usable = true
                if KeyFile.isEncrypted(keyPath) {
                    if let variable = endpoint.passphraseEnvironment, let value = options.environment[variable] {
                        passphrase = value
                    } else if options.allowPassphrasePrompt, let value = PassphrasePrompt.ask(for: keyPath) {
                        passphrase = value
                        // Time spent typing does not count against the connect timeout.
                        deadline = Deadline.after(endpoint.connectTimeout, error: connectDeadline.error)
                    } else {
                        usable = false
                        let source = endpoint.passphraseEnvironment.map { "$\($0) is not set" } ?? "no passphrase variable"
                        tried.append("\(description) (encrypted: \(source) and no terminal to ask)")
                    }
                }
                if usable {
                    let rc = try callRC(deadline) { bs_userauth_publickey_fromfile(s, user, keyPath, passphrase ?? "") }
                    if rc == 0 { return }
                    switch rc {
                    case LIBSSH2_ERROR_FILE:
                        tried.append("\(description) (cannot load it\(passphrase != nil ? ": wrong passphrase?" : ""))")
                    case LIBSSH2_ERROR_AUTHENTICATION_FAILED, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
                        if KeyFile.keyType(keyPath) == "ssh-rsa" {
                            // libssh2 1.10 signs with ssh-rsa (SHA-1), which OpenSSH 8.8+ refuses by default.
                            tried.append("\(description) (RSA: this libssh2 signs with SHA-1 ssh-rsa, refused by "
                                + "OpenSSH 8.8 and later unless PubkeyAcceptedAlgorithms +ssh-rsa; prefer ed25519)")
                        } else {
                            tried.append(description)
                        }
                    default:
                        throw failure(.authentication, "public key authentication", rc)
                    }
                }
            }
        }

        if endpoint.useAgent {
            let socketPath = options.agentSocketPath ?? options.environment["SSH_AUTH_SOCK"]
            if let socketPath, !socketPath.isEmpty {
                if try agentAuth(session: s, socketPath: socketPath, deadline: deadline) { return }
                tried.append("agent")
            } else {
                tried.append("agent (SSH_AUTH_SOCK is not set)")
            }
        }

        let list = tried.isEmpty ? "nothing: no key file and no agent configured" : tried.joined(separator: ", ")
        throw SSHError(.authentication, host: label,
                       message: "host \(label): authentication failed for user \(user) (tried: \(list); "
                           + "server accepts: \(serverMethods.isEmpty ? "nothing" : serverMethods))")
    }

    private func agentAuth(session s: OpaquePointer, socketPath: String, deadline: Deadline) throws -> Bool {
        guard let agent = libssh2_agent_init(s) else { return false }
        defer { libssh2_agent_free(agent) }
        libssh2_agent_set_identity_path(agent, socketPath)
        guard libssh2_agent_connect(agent) == 0 else { return false }
        defer { libssh2_agent_disconnect(agent) }
        guard libssh2_agent_list_identities(agent) == 0 else { return false }
        var previous: UnsafeMutablePointer<libssh2_agent_publickey>?
        while true {
            var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
            let rc = libssh2_agent_get_identity(agent, &identity, previous)
            if rc != 0 { return false }
            guard let identity else { return false }
            let auth = try callRC(deadline) { libssh2_agent_userauth(agent, self.endpoint.user, identity) }
            if auth == 0 { return true }
            previous = identity
        }
    }

    // MARK: - Exec

    /// The command line sent to the server.
    func commandLine(_ command: ShellCommand) -> String {
        if command.privileged && !isRoot {
            return "sudo -n sh -c \(Shell.quote(command.script))"
        }
        return command.script
    }

    func run(_ command: ShellCommand, stdin: Data?, timeout: Duration?, output: OutputHandler?,
             cancellation: CancellationFlag? = nil) throws -> CommandResult {
        guard let s = session else { throw closedError() }
        reapParked()
        let label = self.label
        var deadline = Deadline.after(timeout) {
            SSHError(.commandTimeout, host: label,
                     message: "host \(label): command timed out after \(timeout?.shortSeconds ?? "?"): \(command)")
        }
        deadline.cancellation = cancellation
        if cancellation?.isRaised == true { throw cancelledError(command) }
        let channel = try callPointer(deadline, what: "opening a channel", kind: .channel) { bs_channel_open_session(s) }
        // With a time limit, the remote shell first reports its process id on stderr (a marked line the
        // caller never sees), so that a command cut off can be killed with its whole process group: sshd
        // starts every command in a session of its own and would otherwise let it run on. The login shell's
        // start-up files may write to stderr before it: those lines pass through as the command's.
        let remote = timeout == nil ? nil : RemoteProcess()
        var line = commandLine(command)
        if remote != nil { line = "echo \(RemoteProcess.tag)$$ >&2; exec \(wrappedCommandLine(command))" }
        var result: CommandResult
        do {
            result = try exec(channel: channel, line: line, stdin: stdin, deadline: deadline, output: output,
                              remote: remote)
        } catch let error as SSHError where error.kind == .cancelled || error.kind == .commandTimeout {
            discard(channel, patient: false)
            if let pid = remote?.pid { kill(processGroup: pid, privileged: command.privileged && !isRoot) }
            throw error.kind == .cancelled ? cancelledError(command) : error
        } catch {
            discard(channel, patient: false)
            throw error
        }
        discard(channel)
        if command.privileged && !isRoot {
            try checkSudo(result)
        }
        return result
    }

    /// The command as one program for `exec`: `sh -c SCRIPT`, through `sudo -n` when needed.
    private func wrappedCommandLine(_ command: ShellCommand) -> String {
        (command.privileged && !isRoot ? "sudo -n " : "") + "sh -c \(Shell.quote(command.script))"
    }

    /// Ends a command cut off by its time-out: TERM to its process group now, KILL two seconds later.
    private func kill(processGroup pid: Int32, privileged: Bool) {
        guard pid > 1, let s = session else { return }
        let sudo = privileged ? "sudo -n " : ""
        let script = "\(sudo)kill -TERM -- -\(pid) 2>/dev/null; "
            + "(sleep 2; \(sudo)kill -KILL -- -\(pid)) </dev/null >/dev/null 2>&1 &"
        let deadline = Deadline.after(.seconds(5)) { self.closedError() }
        guard let channel = try? callPointer(deadline, what: "opening a channel", kind: .channel, {
            bs_channel_open_session(s)
        }) else { return }
        _ = try? exec(channel: channel, line: script, stdin: nil, deadline: deadline, output: nil, remote: nil)
        discard(channel, patient: false)
    }

    private func checkSudo(_ result: CommandResult) throws {
        let err = result.stderrText
        if result.exitStatus == 1 && (err.contains("sudo: a password is required")
            || err.contains("sudo: a terminal is required") || err.contains("sudo: no tty present")) {
            throw SSHError(.sudoPasswordRequired, host: label,
                           message: "user \(endpoint.user) on \(endpoint.name) needs passwordless sudo "
                               + "(sudo -n asked for a password on \(label))")
        }
        if result.exitStatus == 127 && err.contains("sudo") && err.contains("not found") {
            throw SSHError(.sudoMissing, host: label,
                           message: "user \(endpoint.user) on \(endpoint.name) is not root and sudo is not installed")
        }
    }

    private func exec(channel: OpaquePointer, line: String, stdin: Data?, deadline: Deadline,
                      output: OutputHandler?, remote: RemoteProcess?) throws -> CommandResult {
        try call(deadline, what: "starting the command", kind: .channel) { bs_channel_exec(channel, line) }
        var stdout = Data()
        var stderr = Data()
        var splitters = (LineSplitter(stream: .stdout), LineSplitter(stream: .stderr))
        let input = stdin ?? Data()
        var inputOffset = 0
        var eofSent = false
        let bufferSize = 256 * 1024
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bufferSize)
        defer { buffer.deallocate() }

        while true {
            var progressed = false
            if !eofSent {
                if inputOffset < input.count {
                    let n = try input.withUnsafeBytes { raw -> Int in
                        let base = raw.baseAddress!.advanced(by: inputOffset).assumingMemoryBound(to: CChar.self)
                        let length = min(input.count - inputOffset, 256 * 1024)
                        return try completingSend(deadline) { bs_channel_write(channel, base, length) }
                    }
                    if n > 0 {
                        inputOffset += n
                        progressed = true
                    } else if n != Int(BS_EAGAIN) && n < 0 {
                        // The command closed its input (or exited): the rest of stdin is not wanted.
                        inputOffset = input.count
                        eofSent = true
                    }
                }
                if inputOffset >= input.count && !eofSent {
                    let rc = try completingSend(deadline) { libssh2_channel_send_eof(channel) }
                    if rc != BS_EAGAIN { eofSent = true; progressed = true }
                }
            }
            for stream in [Int32(0), Int32(SSH_EXTENDED_DATA_STDERR)] {
                while true {
                    let n = try completingSend(deadline) { bs_channel_read(channel, stream, buffer, bufferSize) }
                    if n > 0 {
                        progressed = true
                        let bytes = UnsafeRawBufferPointer(start: buffer, count: n)
                        if stream == 0 {
                            stdout.append(contentsOf: bytes)
                            if let output { splitters.0.feed(bytes, output) }
                        } else if let remote, remote.pid == nil {
                            let own = remote.take(bytes)
                            stderr.append(contentsOf: own)
                            if let output { own.withUnsafeBytes { splitters.1.feed($0, output) } }
                        } else {
                            stderr.append(contentsOf: bytes)
                            if let output { splitters.1.feed(bytes, output) }
                        }
                    } else if n == 0 || n == Int(BS_EAGAIN) {
                        break
                    } else {
                        throw failure(.channel, "reading the command's output", Int32(n))
                    }
                }
            }
            if libssh2_channel_eof(channel) != 0 { break }
            if !progressed { try wait(deadline) }
        }
        if let remote, remote.pid == nil, !remote.pending.isEmpty {
            // No process id line came (the shell failed before it): what did come is the command's stderr.
            stderr.append(contentsOf: remote.pending)
            if let output { remote.pending.withUnsafeBytes { splitters.1.feed($0, output) } }
            remote.pending = []
        }
        if let output {
            splitters.0.flush(output)
            splitters.1.flush(output)
        }
        try call(deadline, what: "closing the channel", kind: .channel) { libssh2_channel_close(channel) }
        try call(deadline, what: "closing the channel", kind: .channel) { libssh2_channel_wait_closed(channel) }
        var status = libssh2_channel_get_exit_status(channel)
        var signalName: String?
        var rawSignal: UnsafeMutablePointer<CChar>?
        var signalLength = 0
        if libssh2_channel_get_exit_signal(channel, &rawSignal, &signalLength, nil, nil, nil, nil) == 0,
           let rawSignal {
            if signalLength > 0 {
                signalName = String(decoding: UnsafeRawBufferPointer(start: rawSignal, count: signalLength), as: UTF8.self)
            }
            libssh2_free(session, rawSignal)
        }
        if let signalName, status == 0 {
            status = 128 + (Self.signalNumbers[signalName] ?? 0)
        }
        return CommandResult(exitStatus: status, exitSignal: signalName, stdout: stdout, stderr: stderr)
    }

    private static let signalNumbers: [String: Int32] = [
        "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8, "KILL": 9, "USR1": 10,
        "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    ]

    /// Closes and frees a channel without letting a dead or slow peer hold us. sshd answers a close only
    /// when the command has ended, so after a time-out the channel is parked and freed on a later call.
    private func discard(_ channel: OpaquePointer, patient: Bool = true) {
        guard let s = session else { return }
        let deadline = Deadline.after(.seconds(2)) { self.closedError() }
        // Finish sending the close (a partly sent packet must be completed before anything else is sent).
        while libssh2_channel_close(channel) == BS_EAGAIN,
              libssh2_session_block_directions(s) & Int32(BS_BLOCK_OUTBOUND) != 0 {
            if (try? wait(deadline)) == nil { break }
        }
        if patient {
            _ = try? callRC(deadline) { libssh2_channel_free(channel) }
        } else if libssh2_channel_free(channel) == BS_EAGAIN {
            parked.append(channel)
        }
    }

    /// Frees parked channels whose close has been answered by now.
    private func reapParked() {
        parked.removeAll { libssh2_channel_free($0) != BS_EAGAIN }
    }

    // MARK: - Files

    private func sftpSession() throws -> OpaquePointer {
        if let sftp { return sftp }
        guard let s = session else { throw closedError() }
        let deadline = Deadline.after(endpoint.connectTimeout) {
            SSHError(.sftp, host: self.label, message: "host \(self.label): starting SFTP timed out")
        }
        let handle = try callPointer(deadline, what: "starting SFTP", kind: .sftp) { libssh2_sftp_init(s) }
        sftp = handle
        return handle
    }

    private func sftpError(_ what: String, path: String) -> SSHError {
        let code = session.map { libssh2_session_last_errno($0) } ?? 0
        if Self.connectionLostCodes.contains(code) { return connectionLost("\(what) \(path)", code) }
        var detail = libssh2Message() ?? "unknown error"
        if code == BS_ERROR_SFTP_PROTOCOL, let sftp {
            detail = Self.sftpStatus(libssh2_sftp_last_error(sftp))
        }
        return SSHError(.sftp, host: label, message: "host \(label): \(what) \(path) failed: \(detail)", code: code,
                        libssh2Message: libssh2Message())
    }

    private static func sftpStatus(_ code: UInt) -> String {
        switch code {
        case LIBSSH2_FX_NO_SUCH_FILE: return "no such file"
        case LIBSSH2_FX_PERMISSION_DENIED: return "permission denied"
        case LIBSSH2_FX_FAILURE: return "failure"
        case LIBSSH2_FX_FILE_ALREADY_EXISTS: return "file already exists"
        case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM: return "no space left"
        default: return "SFTP status \(code)"
        }
    }

    private func lastSFTPStatus() -> UInt? {
        guard let s = session, libssh2_session_last_errno(s) == BS_ERROR_SFTP_PROTOCOL, let sftp else { return nil }
        return libssh2_sftp_last_error(sftp)
    }

    /// Set for the duration of an upload or download: lets the caller's task cancel it.
    private var transferCancellation: CancellationFlag?

    private func transferDeadline(_ what: String, _ path: String) -> Deadline {
        // Transfers have no overall limit; a stalled peer is caught by TCP keepalive.
        var deadline = Deadline(instant: nil) {
            SSHError(.sftp, host: self.label, message: "host \(self.label): \(what) \(path) timed out")
        }
        deadline.cancellation = transferCancellation
        return deadline
    }

    /// Writes `data` to a new file at `path` (which must not exist) with `mode`.
    private func sftpWrite(_ data: Data, to path: String, mode: Int) throws {
        let sftp = try sftpSession()
        let deadline = transferDeadline("writing", path)
        let handle: OpaquePointer
        do {
            handle = try callPointer(deadline, what: "opening \(path) for writing", kind: .sftp) {
                bs_sftp_open(sftp, path, UInt(BS_SFTP_WRITE_NEW), mode)
            }
        } catch {
            throw abandonedOpen(error, "creating", path: path)
        }
        var offset = 0
        var failed: Error?
        while offset < data.count {
            let n: Int
            do {
                n = try data.withUnsafeBytes { raw -> Int in
                    let base = raw.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self)
                    let length = min(data.count - offset, 1 << 20)
                    return try completingSend(deadline) { libssh2_sftp_write(handle, base, length) }
                }
            } catch {
                failed = error
                break
            }
            if n > 0 {
                offset += n
            } else if n == Int(BS_EAGAIN) || n == 0 {
                do { try wait(deadline) } catch { failed = error; break }
            } else {
                failed = sftpError("writing", path: path)
                break
            }
        }
        if let failed {
            // An interrupted transfer may leave requests in flight: start SFTP afresh next time.
            resetSFTP()
            throw failed
        }
        _ = try? callRC(deadline) { bs_sftp_close(handle) }
    }

    /// The error for an open that did not get an answer from the server. When the server answered with a
    /// status, SFTP is fine; otherwise (cancelled, timed out, connection trouble) the open request may still
    /// be in flight, and reusing the SFTP session would pair a later request with this one's reply: it is
    /// shut down and started afresh next time. Cancellation stays a cancellation.
    private func abandonedOpen(_ error: Error, _ what: String, path: String) -> Error {
        if lastSFTPStatus() != nil { return sftpError(what, path: path) }
        let reported: Error = (error as? SSHError)?.kind == .cancelled ? error : sftpError(what, path: path)
        resetSFTP()
        return reported
    }

    private func resetSFTP() {
        guard let handle = sftp else { return }
        let deadline = Deadline.after(.seconds(2)) { self.closedError() }
        _ = try? callRC(deadline) { libssh2_sftp_shutdown(handle) }
        sftp = nil
    }

    private func sftpRead(_ path: String) throws -> Data? {
        let sftp = try sftpSession()
        let deadline = transferDeadline("reading", path)
        let handle: OpaquePointer
        do {
            handle = try callPointer(deadline, what: "opening \(path)", kind: .sftp) {
                bs_sftp_open(sftp, path, UInt(BS_SFTP_READ), 0)
            }
        } catch {
            if let status = lastSFTPStatus() {
                if status == LIBSSH2_FX_PERMISSION_DENIED && !isRoot { return nil }
                throw SSHError(.remoteFile, host: label,
                               message: "host \(label): cannot download \(path): \(Self.sftpStatus(status))")
            }
            throw abandonedOpen(error, "opening", path: path)
        }
        var completed = false
        defer {
            if completed { _ = try? callRC(deadline) { bs_sftp_close(handle) } } else { resetSFTP() }
        }
        var out = Data()
        let size = 256 * 1024
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
        defer { buffer.deallocate() }
        while true {
            let n = libssh2_sftp_read(handle, buffer, size)
            if n > 0 {
                out.append(UnsafeRawBufferPointer(start: buffer, count: n).bindMemory(to: UInt8.self))
            } else if n == 0 {
                completed = true
                return out
            } else if n == Int(BS_EAGAIN) {
                try wait(deadline)
            } else {
                throw sftpError("reading", path: path)
            }
        }
    }

    func upload(_ data: Data, to path: String, mode: Int, cancellation: CancellationFlag? = nil) throws {
        if cancellation?.isRaised == true {
            throw SSHError(.cancelled, host: label, message: "host \(label): upload of \(path) cancelled")
        }
        transferCancellation = cancellation
        defer { transferCancellation = nil }
        let token = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let directory = (path as NSString).deletingLastPathComponent.isEmpty
            ? "." : (path as NSString).deletingLastPathComponent
        let octal = "0" + String(mode & 0o7777, radix: 8)
        let besideTarget = "\(directory)/.bootstrap-upload-\(token)"
        if isRoot {
            do {
                do {
                    try sftpWrite(data, to: besideTarget, mode: 0o600)
                } catch let error as SSHError where error.kind == .sftp && error.message.hasSuffix("no such file") {
                    // The directory does not exist yet: create it and try once more.
                    let made = try run(ShellCommand(["mkdir", "-p", directory], privileged: true), stdin: nil,
                                       timeout: nil, output: nil, cancellation: transferCancellation)
                    guard made.succeeded else { throw error }
                    try sftpWrite(data, to: besideTarget, mode: 0o600)
                }
                let script = "chmod \(octal) \(Shell.quote(besideTarget)) && mv -f \(Shell.quote(besideTarget)) "
                    + "\(Shell.quote(path))"
                let result = try run(ShellCommand(script: script, privileged: true), stdin: nil, timeout: nil,
                                     output: nil, cancellation: transferCancellation)
                guard result.succeeded else { throw installError(path, result) }
            } catch {
                removeQuietly(besideTarget, privileged: true)
                throw error
            }
        } else {
            let temporary = "/tmp/.bootstrap-upload-\(token)"
            do {
                try sftpWrite(data, to: temporary, mode: 0o600)
            } catch {
                removeQuietly(temporary, privileged: false)
                throw error
            }
            let inner = "mkdir -p \(Shell.quote(directory)) && install -m \(octal) \(Shell.quote(temporary)) "
                + "\(Shell.quote(besideTarget)) && mv -f \(Shell.quote(besideTarget)) \(Shell.quote(path)) "
                + "|| { rc=$?; rm -f \(Shell.quote(besideTarget)); exit $rc; }"
            let script = "sudo -n sh -c \(Shell.quote(inner)); rc=$?; rm -f \(Shell.quote(temporary)); exit $rc"
            let result = try run(ShellCommand(script: script, privileged: false), stdin: nil, timeout: nil, output: nil,
                                 cancellation: transferCancellation)
            try checkSudo(result)
            guard result.succeeded else { throw installError(path, result) }
        }
    }

    /// Removes a temporary file after a failed or cancelled upload (best effort, not cancellable).
    private func removeQuietly(_ path: String, privileged: Bool) {
        guard session != nil else { return }
        let saved = transferCancellation
        transferCancellation = nil
        defer { transferCancellation = saved }
        _ = try? run(ShellCommand(["rm", "-f", "--", path], privileged: privileged), stdin: nil, timeout: .seconds(10),
                     output: nil)
    }

    private func installError(_ path: String, _ result: CommandResult) -> SSHError {
        SSHError(.remoteFile, host: label,
                 message: "host \(label): cannot put the uploaded file in place at \(path) (exit \(result.exitStatus)): "
                     + result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func download(_ path: String, cancellation: CancellationFlag? = nil) throws -> Data {
        if cancellation?.isRaised == true {
            throw SSHError(.cancelled, host: label, message: "host \(label): download of \(path) cancelled")
        }
        transferCancellation = cancellation
        defer { transferCancellation = nil }
        if let data = try sftpRead(path) { return data }
        let result = try run(ShellCommand(["cat", "--", path], privileged: true), stdin: nil, timeout: nil, output: nil,
                             cancellation: transferCancellation)
        guard result.succeeded else {
            throw SSHError(.remoteFile, host: label,
                           message: "host \(label): cannot download \(path): "
                               + result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return result.stdout
    }

    // MARK: - Bastion tunnel

    /// Opens a direct-tcpip channel to `target` and returns the local end of a socket pair that carries it.
    /// `pumpTunnel()` must then run on this connection's thread.
    func openTunnel(to target: HostEndpoint) throws -> Int32 {
        guard let s = session else { throw closedError() }
        let timeout = target.connectTimeout
        let deadline = Deadline.after(timeout) {
            SSHError(.connectTimeout, host: target.label,
                     message: "host \(target.label): connection timed out after \(timeout.shortSeconds)")
        }
        let channel: OpaquePointer
        do {
            channel = try callPointer(deadline, what: "opening a tunnel", kind: .tunnel) {
                bs_channel_direct_tcpip(s, target.address, Int32(target.port))
            }
        } catch let error as SSHError where error.kind == .tunnel {
            throw SSHError(.tunnel, host: target.label,
                           message: "host \(target.label): bastion \(label) could not open a tunnel to "
                               + "\(target.address):\(target.port): \(error.libssh2Message ?? error.message)",
                           code: error.code, libssh2Message: error.libssh2Message)
        }
        var pair: [Int32] = [-1, -1]
        #if canImport(Glibc)
        let kind = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let kind = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, kind, 0, &pair) == 0 else {
            discard(channel)
            throw SSHError(.tunnel, host: target.label, message: "host \(target.label): socketpair: \(Net.errnoText())")
        }
        Net.setNonBlocking(pair[0])
        Net.setNonBlocking(pair[1])
        tunnelChannel = channel
        tunnelFD = pair[0]
        return pair[1]
    }

    /// Moves bytes between the tunnel channel and the socket pair until either side ends.
    func pumpTunnel() {
        guard let s = session, let channel = tunnelChannel else { return }
        var toPair = ByteQueue()
        var toChannel = ByteQueue()
        var pairEOF = false
        let limit = 1 << 20
        let size = 64 * 1024
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
        defer { buffer.deallocate() }
        var lastActivity = ContinuousClock.now
        loop: while true {
            var progressed = false
            let forever = Deadline(instant: nil) { self.closedError() }
            while toPair.count < limit {
                guard let n = try? completingSend(forever, { bs_channel_read(channel, 0, buffer, size) }) else { break loop }
                if n > 0 { toPair.append(buffer, n); progressed = true } else if n == Int(BS_EAGAIN) || n == 0 { break } else { break loop }
            }
            if !toPair.isEmpty {
                // send(MSG_NOSIGNAL): a closed peer must not raise SIGPIPE in this process.
                let n = toPair.withFront { send(tunnelFD, $0, $1, Int32(MSG_NOSIGNAL)) }
                if n > 0 { toPair.drop(n); progressed = true } else if n < 0 && errno != EAGAIN && errno != EINTR { break loop }
            }
            if !pairEOF && toChannel.count < limit {
                let n = read(tunnelFD, buffer, size)
                if n > 0 { toChannel.append(buffer, n); progressed = true } else if n == 0 { pairEOF = true } else if errno != EAGAIN && errno != EINTR { break loop }
            }
            if !toChannel.isEmpty {
                guard let n = try? toChannel.withFront({ base, length in
                    try completingSend(forever) { bs_channel_write(channel, base, length) }
                }) else { break loop }
                if n > 0 { toChannel.drop(n); progressed = true } else if n != Int(BS_EAGAIN) { break loop }
            }
            if pairEOF && toChannel.isEmpty { break }
            if libssh2_channel_eof(channel) != 0 && toPair.isEmpty { break }
            if progressed { lastActivity = .now; continue }
            // While the pair side is backed up, the SSH socket is only watched when a write to the channel
            // may be waiting for a window adjustment (otherwise its pending input would wake us at once).
            let watchInput = toPair.count < limit || !toChannel.isEmpty
            var fds = [
                pollfd(fd: fd, events: watchInput ? Int16(POLLIN) : 0, revents: 0),
                pollfd(fd: tunnelFD, events: 0, revents: 0),
            ]
            if libssh2_session_block_directions(s) & Int32(BS_BLOCK_OUTBOUND) != 0 { fds[0].events |= Int16(POLLOUT) }
            if !pairEOF && toChannel.count < limit { fds[1].events |= Int16(POLLIN) }
            if !toPair.isEmpty { fds[1].events |= Int16(POLLOUT) }
            let rc = poll(&fds, 2, 1000)
            if rc == 0, options.keepaliveInterval > 0,
               ContinuousClock.now - lastActivity > .seconds(options.keepaliveInterval) {
                keepalive()
                lastActivity = .now
            }
        }
        if session != nil {  // (nil when a stalled send closed the connection, channel included)
            let deadline = Deadline.after(.seconds(2)) { self.closedError() }
            _ = try? callRC(deadline) { libssh2_channel_send_eof(channel) }
            discard(channel)
        }
        tunnelChannel = nil
        if tunnelFD >= 0 { close(tunnelFD) }
        tunnelFD = -1
    }

    // MARK: - Shutdown

    func shutdown() {
        if let s = session {
            let deadline = Deadline.after(.seconds(2)) { self.closedError() }
            if let channel = tunnelChannel { discard(channel); tunnelChannel = nil }
            parked.removeAll()  // freed with the session below
            if let sftp { _ = try? callRC(deadline) { libssh2_sftp_shutdown(sftp) } }
            sftp = nil
            _ = try? callRC(deadline) { bs_session_disconnect(s, "bye") }
            // Any channel still open (parked after a time-out) fails at once on a shut socket, so freeing the
            // session cannot wait on it. The descriptor stays ours until `close` below.
            if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
            while libssh2_session_free(s) == BS_EAGAIN, ContinuousClock.now < deadline.instant! {
                usleep(1000)
            }
            session = nil
        }
        if tunnelFD >= 0 { close(tunnelFD); tunnelFD = -1 }
        if fd >= 0 { close(fd); fd = -1 }
    }

    // MARK: - Waiting and errors

    private func cancelledError(_ command: ShellCommand) -> SSHError {
        SSHError(.cancelled, host: label, message: "host \(label): command cancelled: \(command)")
    }

    private func closedError() -> SSHError {
        SSHError(.closed, host: label, message: "host \(label): the SSH session is closed")
    }

    private func libssh2Message() -> String? {
        guard let s = session else { return nil }
        var raw: UnsafeMutablePointer<CChar>?
        _ = bs_session_last_error(s, &raw)
        guard let raw else { return nil }
        let text = String(cString: raw)
        return text.isEmpty ? nil : text
    }

    /// libssh2's codes for a connection that broke under it (the peer closed it, a read or write failed).
    static let connectionLostCodes: Set<Int32> = [
        LIBSSH2_ERROR_SOCKET_SEND, LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_DISCONNECT,
    ]

    /// Said instead of libssh2's "transport read (code -43)" and the like.
    private func connectionLost(_ what: String, _ code: Int32) -> SSHError {
        SSHError(.closed, host: label,
                 message: "host \(label): the connection to the host was lost (\(what))",
                 code: code, libssh2Message: libssh2Message())
    }

    private func failure(_ kind: SSHError.Kind, _ what: String, _ code: Int32) -> SSHError {
        if Self.connectionLostCodes.contains(code) { return connectionLost(what, code) }
        let message = libssh2Message()
        return SSHError(kind, host: label,
                        message: "host \(label): \(what) failed: \(message ?? "libssh2 error") (libssh2 code \(code))",
                        code: code, libssh2Message: message)
    }

    /// Waits for the socket in the direction libssh2 is blocked on, or throws the deadline's error.
    private func wait(_ deadline: Deadline) throws {
        guard let s = session else { throw closedError() }
        if let instant = deadline.instant, instant <= .now { throw deadline.error() }
        if deadline.cancellation?.isRaised == true {
            throw SSHError(.cancelled, host: label, message: "host \(label): cancelled")
        }
        let directions = libssh2_session_block_directions(s)
        var events: Int16 = 0
        if directions & Int32(BS_BLOCK_INBOUND) != 0 { events |= Int16(POLLIN) }
        if directions & Int32(BS_BLOCK_OUTBOUND) != 0 { events |= Int16(POLLOUT) }
        if events == 0 {
            Net.wait(fd, events: Int16(POLLIN), deadline: deadline.instant, maxWait: .milliseconds(5))
        } else {
            Net.wait(fd, events: events, deadline: deadline.instant,
                     maxWait: deadline.cancellation == nil ? .seconds(1) : .milliseconds(100))
        }
        if let instant = deadline.instant, instant <= .now { throw deadline.error() }
    }

    /// Calls `body` again while libssh2 is stuck part-way through sending a packet: until that packet is
    /// out, no other call may send anything (libssh2 would answer LIBSSH2_ERROR_BAD_USE). Waiting for the
    /// socket to drain is safe: the server keeps reading whatever we send within its window.
    /// The caller's deadline and cancellation do not apply here: giving up half-way would leave the session
    /// unusable. If the packet cannot be sent within 30 seconds, the connection is dead and is closed.
    private func completingSend<T: BinaryInteger>(_ deadline: Deadline, _ body: () -> T) throws -> T {
        var limit: Deadline?
        while true {
            let rc = body()
            guard rc == BS_EAGAIN, let s = session,
                  libssh2_session_block_directions(s) & Int32(BS_BLOCK_OUTBOUND) != 0 else { return rc }
            if limit == nil {
                let label = self.label
                limit = Deadline.after(.seconds(30)) {
                    SSHError(.closed, host: label,
                             message: "host \(label): the connection stalled for 30s while sending; it is closed")
                }
            }
            do {
                try wait(limit!)
            } catch {
                shutdown()
                throw error
            }
        }
    }

    /// Repeats `body` while it says EAGAIN; returns its final code, negative or not.
    private func callRC(_ deadline: Deadline, _ body: () -> Int32) throws -> Int32 {
        while true {
            let rc = body()
            if rc != BS_EAGAIN { return rc }
            try wait(deadline)
        }
    }

    /// Like `callRC`, but a negative code is an error.
    private func call(_ deadline: Deadline, what: String, kind: SSHError.Kind, _ body: () -> Int32) throws {
        let rc = try callRC(deadline, body)
        if rc < 0 { throw failure(kind, what, rc) }
    }

    /// Repeats `body` while it returns nil with EAGAIN.
    private func callPointer(_ deadline: Deadline, what: String, kind: SSHError.Kind,
                             _ body: () -> OpaquePointer?) throws -> OpaquePointer {
        guard let s = session else { throw closedError() }
        while true {
            if let pointer = body() { return pointer }
            let err = libssh2_session_last_errno(s)
            if err != BS_EAGAIN { throw failure(kind, what, err) }
            try wait(deadline)
        }
    }
}

/// The process id a remote command reported (see `Connection.run`): a stderr line `bootstrap-pid:PID`.
final class RemoteProcess {
    static let tag = "bootstrap-pid:"
    private static let tagBytes = Array(tag.utf8)
    /// Stderr bytes not yet known to be the command's own (an incomplete line while the tag is awaited).
    var pending: [UInt8] = []
    var pid: Int32?

    /// Takes stderr bytes while the tag is awaited; returns those that are the command's own stderr:
    /// every line but the tag line (lines a login shell's start-up files wrote before it, and what follows).
    func take(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        pending.append(contentsOf: bytes)
        var own: [UInt8] = []
        while pid == nil, let newline = pending.firstIndex(of: 0x0A) {
            let line = pending[..<newline]
            if line.starts(with: Self.tagBytes) {
                pid = Int32(String(decoding: line.dropFirst(Self.tagBytes.count), as: UTF8.self)) ?? -1
            } else {
                own.append(contentsOf: pending[...newline])
            }
            pending.removeSubrange(...newline)
        }
        if pid != nil {
            own.append(contentsOf: pending)
            pending = []
        }
        return own
    }
}

/// Splits a stream into lines for the output callback; the last partial line is flushed at the end.
struct LineSplitter {
    let stream: BootstrapEngine.OutputStream
    private var pending = [UInt8]()

    init(stream: BootstrapEngine.OutputStream) { self.stream = stream }

    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ handler: OutputHandler) {
        var start = 0
        for (i, byte) in bytes.enumerated() where byte == 0x0A {
            pending.append(contentsOf: bytes[start..<i])
            emit(handler)
            start = i + 1
        }
        pending.append(contentsOf: bytes[start...])
    }

    mutating func flush(_ handler: OutputHandler) {
        if !pending.isEmpty { emit(handler) }
    }

    private mutating func emit(_ handler: OutputHandler) {
        if pending.last == 0x0D { pending.removeLast() }
        handler(stream, String(decoding: pending, as: UTF8.self))
        pending.removeAll(keepingCapacity: true)
    }
}

/// A FIFO of bytes for the tunnel pump.
struct ByteQueue {
    private var storage = [UInt8]()
    private var start = 0

    var count: Int { storage.count - start }
    var isEmpty: Bool { count == 0 }

    mutating func append(_ pointer: UnsafePointer<CChar>, _ n: Int) {
        pointer.withMemoryRebound(to: UInt8.self, capacity: n) { storage.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
    }

    func withFront<R>(_ body: (UnsafePointer<CChar>, Int) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!.advanced(by: start)).assumingMemoryBound(to: CChar.self)
            return try body(base, count)
        }
    }

    mutating func drop(_ n: Int) {
        start += n
        if start == storage.count {
            storage.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1 << 20 {
            storage.removeFirst(start)
            start = 0
        }
    }
}
