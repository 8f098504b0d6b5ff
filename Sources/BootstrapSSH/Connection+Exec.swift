import BootstrapCore
import BootstrapTransport
import CLibSSH2
import Foundation
import Glibc

// Running a command on a channel: stdin, stdout and stderr in one loop, time-outs, exit status and signal.
extension Connection {
    // MARK: - Exec

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
        if cancellation?.isCancelled == true { throw cancelledError(command) }
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

    func exec(channel: OpaquePointer, line: String, stdin: Data?, deadline: Deadline,
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
    func discard(_ channel: OpaquePointer, patient: Bool = true) {
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
    let stream: BootstrapTransport.OutputStream
    private var pending = [UInt8]()

    init(stream: BootstrapTransport.OutputStream) { self.stream = stream }

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
