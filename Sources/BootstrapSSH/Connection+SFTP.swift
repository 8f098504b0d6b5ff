import BootstrapCore
import BootstrapTransport
import CLibSSH2
import Foundation
import Glibc

// Files: upload over SFTP to a temporary file, then rename into place (through sudo when not root);
// download over SFTP, or through `sudo -n cat`.
extension Connection {
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
        if cancellation?.isCancelled == true {
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
        if cancellation?.isCancelled == true {
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
}
