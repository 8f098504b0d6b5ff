import BootstrapCore
import BootstrapTransport
import CLibSSH2
import Foundation
import Glibc

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

// Non-blocking libssh2 calls: waiting on the socket with a deadline, and the errors reported.
extension Connection {
    // MARK: - Waiting and errors

    func cancelledError(_ command: ShellCommand) -> SSHError {
        SSHError(.cancelled, host: label, message: "host \(label): command cancelled: \(command)")
    }

    func closedError() -> SSHError {
        SSHError(.closed, host: label, message: "host \(label): the SSH session is closed")
    }

    func libssh2Message() -> String? {
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
    func connectionLost(_ what: String, _ code: Int32) -> SSHError {
        SSHError(.closed, host: label,
                 message: "host \(label): the connection to the host was lost (\(what))",
                 code: code, libssh2Message: libssh2Message())
    }

    func failure(_ kind: SSHError.Kind, _ what: String, _ code: Int32) -> SSHError {
        if Self.connectionLostCodes.contains(code) { return connectionLost(what, code) }
        let message = libssh2Message()
        return SSHError(kind, host: label,
                        message: "host \(label): \(what) failed: \(message ?? "libssh2 error") (libssh2 code \(code))",
                        code: code, libssh2Message: message)
    }

    /// Waits for the socket in the direction libssh2 is blocked on, or throws the deadline's error.
    func wait(_ deadline: Deadline) throws {
        guard let s = session else { throw closedError() }
        if let instant = deadline.instant, instant <= .now { throw deadline.error() }
        if deadline.cancellation?.isCancelled == true {
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
    func completingSend<T: BinaryInteger>(_ deadline: Deadline, _ body: () -> T) throws -> T {
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
    func callRC(_ deadline: Deadline, _ body: () -> Int32) throws -> Int32 {
        while true {
            let rc = body()
            if rc != BS_EAGAIN { return rc }
            try wait(deadline)
        }
    }

    /// Like `callRC`, but a negative code is an error.
    func call(_ deadline: Deadline, what: String, kind: SSHError.Kind, _ body: () -> Int32) throws {
        let rc = try callRC(deadline, body)
        if rc < 0 { throw failure(kind, what, rc) }
    }

    /// Repeats `body` while it returns nil with EAGAIN.
    func callPointer(_ deadline: Deadline, what: String, kind: SSHError.Kind,
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
