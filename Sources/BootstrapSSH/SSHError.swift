import BootstrapTransport
import Foundation

/// A failure of the SSH transport: what went wrong, on which host, and what libssh2 said.
///
/// `description` is the human message. Errors never carry secrets (passphrases, command secrets are
/// redacted through `ShellCommand.description`).
public struct SSHError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case resolve
        case connectRefused
        case connectTimeout
        case connect
        case handshake
        case hostKeyUnknown
        case hostKeyChanged
        case knownHosts
        case authentication
        case sudoPasswordRequired
        case sudoMissing
        case commandTimeout
        case cancelled
        case channel
        case sftp
        case remoteFile
        case tunnel
        case closed
    }

    public var kind: Kind
    /// The host the error is about, as `NAME (ADDR:PORT)`.
    public var host: String
    /// The libssh2 error code, when libssh2 reported one.
    public var code: Int32?
    /// libssh2's own message, when it gave one.
    public var libssh2Message: String?
    /// The whole message for a person.
    public var message: String

    public init(_ kind: Kind, host: String, message: String, code: Int32? = nil, libssh2Message: String? = nil) {
        self.kind = kind
        self.host = host
        self.code = code
        self.libssh2Message = libssh2Message
        self.message = message
    }

    public var description: String { message }
}

extension SSHError: HostScopedError {
    /// The plan's name of the host (`host` is `NAME (ADDR:PORT)`).
    public var hostName: String? {
        guard let open = host.range(of: " (") else { return host }
        return String(host[..<open.lowerBound])
    }

    /// The message without "host NAME (ADDR:PORT): ": `ADDR:PORT: …`, the address kept.
    public var detail: String {
        let prefix = "host \(host): "
        guard message.hasPrefix(prefix) else { return message }
        let rest = message.dropFirst(prefix.count)
        guard let open = host.range(of: " ("), host.hasSuffix(")") else { return String(rest) }
        return "\(host[open.upperBound..<host.index(before: host.endIndex)]): \(rest)"
    }
}

extension Duration {
    /// `10s`, `1.5s`, `0.25s`.
    var shortSeconds: String {
        let (s, atto) = components
        if atto == 0 { return "\(s)s" }
        let value = Double(s) + Double(atto) / 1e18
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text + "s"
    }

    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

extension SSHError: ClassifiedTransportError {
    public var transportFailure: TransportFailure {
        switch kind {
        case .commandTimeout: return .timedOut
        case .cancelled: return .cancelled
        default: return .other
        }
    }
}
