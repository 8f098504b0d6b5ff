import BootstrapCore
import BootstrapTransport
import CLibSSH2
import Foundation
import Glibc

// The bastion side of a tunnel: a direct-tcpip channel pumped through a socket pair.
extension Connection {
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
        let kind = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
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
