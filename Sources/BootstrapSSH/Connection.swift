import BootstrapCore
import BootstrapTransport
import CLibSSH2
import Foundation
import Glibc

// One libssh2 connection, by concern: this file holds the type, connecting and shutting down;
// `Connection+Auth` authentication, `+Exec` commands, `+Sudo` what runs through sudo, `+SFTP` files,
// `+Tunnel` the bastion's direct-tcpip tunnel, `+Waiting` the non-blocking calls, deadlines and errors.
// Every method runs on the connection's `SessionThread`, never on Swift's cooperative pool.

/// libssh2 is initialised once per process.
enum LibSSH2 {
    private static let initialised: Bool = { libssh2_init(0) == 0 }()
    static func initialise() { _ = initialised }
}

/// One libssh2 session on one socket. Used from a single thread (its `SessionThread`); the session is
/// non-blocking and every wait is a `poll` on the socket with a deadline.
final class Connection: @unchecked Sendable {
    let endpoint: HostEndpoint
    let options: SSHTransport.Options
    var session: OpaquePointer?
    var fd: Int32 = -1
    var sftp: OpaquePointer?
    /// Set for a bastion connection that carries a tunnel.
    var tunnelChannel: OpaquePointer?
    var tunnelFD: Int32 = -1
    /// Channels closed after a time-out whose close sshd has not answered yet.
    var parked: [OpaquePointer] = []

    init(endpoint: HostEndpoint, options: SSHTransport.Options) {
        self.endpoint = endpoint
        self.options = options
    }

    deinit { shutdown() }

    var label: String { endpoint.label }
    var isRoot: Bool { endpoint.user == "root" }
    /// Set for the duration of an upload or download: lets the caller's task cancel it.
    var transferCancellation: CancellationFlag?

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
                    // strerror's "Connection refused" says nothing more: said once.
                    let more = why.lowercased() == "connection refused" ? "" : " (\(why))"
                    throw SSHError(.connectRefused, host: label, message: "host \(label): connection refused\(more)")
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
}
