import Glibc
import Foundation

/// Sockets: name resolution, non-blocking connect with a deadline, waiting on descriptors.
enum Net {
    struct Address: Sendable {
        var family: Int32
        var storage: [UInt8]
        var text: String
    }

    enum ConnectFailure: Error {
        case resolve(String)
        case timedOut
        case refused(String)
        case failed(String)
    }

    /// All addresses `host` resolves to (numeric addresses included), for a TCP stream on `port`.
    static func resolve(_ host: String, port: Int) throws(ConnectFailure) -> [Address] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        if rc != 0 {
            throw .resolve(String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(result) }
        var out: [Address] = []
        var cursor = result
        while let ai = cursor {
            if let sa = ai.pointee.ai_addr {
                let bytes = [UInt8](UnsafeRawBufferPointer(start: sa, count: Int(ai.pointee.ai_addrlen)))
                var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                _ = getnameinfo(sa, ai.pointee.ai_addrlen, &name, socklen_t(name.count), nil, 0, NI_NUMERICHOST)
                let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                out.append(Address(family: ai.pointee.ai_family, storage: bytes, text: text))
            }
            cursor = ai.pointee.ai_next
        }
        return out
    }

    /// Connects to the first address that answers before `deadline`. The socket is left non-blocking,
    /// with TCP keepalive and TCP_NODELAY on.
    static func connect(host: String, port: Int, deadline: ContinuousClock.Instant) throws(ConnectFailure) -> Int32 {
        let addresses = try resolve(host, port: port)
        var lastFailure = ConnectFailure.failed("no address")
        for address in addresses {
            let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { lastFailure = .failed(errnoText()); continue }
            setNonBlocking(fd)
            let rc = address.storage.withUnsafeBytes { raw in
                Glibc.connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
            }
            if rc != 0 && errno != EINPROGRESS {
                lastFailure = errno == ECONNREFUSED ? .refused(errnoText()) : .failed(errnoText())
                close(fd)
                continue
            }
            if rc != 0 {
                let ready = wait(fd, events: Int16(POLLOUT), deadline: deadline)
                if !ready {
                    close(fd)
                    throw .timedOut
                }
                var soError: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                if soError != 0 {
                    let text = String(cString: strerror(soError))
                    lastFailure = soError == ECONNREFUSED ? .refused(text) : .failed(text)
                    close(fd)
                    continue
                }
            }
            var one: Int32 = 1
            let size = socklen_t(MemoryLayout<Int32>.size)
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, size)
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, size)
            // A peer that vanished is noticed within about a minute (the default is two hours), even in
            // the middle of a long command or transfer, when no SSH keepalive can be sent.
            var idle: Int32 = 30, interval: Int32 = 10, count: Int32 = 3
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, size)
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &interval, size)
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &count, size)
            return fd
        }
        throw lastFailure
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// Waits until `fd` is ready for `events` or `deadline` passes (`nil`: `maxWait`). Returns whether
    /// it became ready (an error or hang-up counts as ready: the next call will report it).
    @discardableResult
    static func wait(_ fd: Int32, events: Int16, deadline: ContinuousClock.Instant?, maxWait: Duration = .seconds(3600))
        -> Bool
    {
        while true {
            var limit = maxWait
            if let deadline {
                let remaining = deadline - .now
                if remaining <= .zero { return false }
                limit = min(limit, remaining)
            }
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let ms = Int32(min(max((limit.seconds * 1000).rounded(.up), 0), 3_600_000))
            let rc = poll(&pfd, 1, ms)
            if rc > 0 { return true }
            if rc < 0 && errno == EINTR { continue }
            if rc < 0 { return true }
            if deadline == nil { return false }
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
