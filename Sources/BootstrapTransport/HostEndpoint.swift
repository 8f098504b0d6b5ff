import BootstrapCore
import Foundation

/// Everything a transport needs to reach one host. Built from the plan by `HostEndpoint.resolver` (engine).
public struct HostEndpoint: Sendable, Hashable {
    public var name: String
    public var address: String
    public var port: Int
    public var user: String
    /// Private key file (already `~`-expanded). Its passphrase, if any, comes from `passphraseEnvironment`.
    public var keyPath: String?
    /// Environment variable holding the key's passphrase.
    public var passphraseEnvironment: String?
    /// Try ssh-agent (`SSH_AUTH_SOCK`) after the key file.
    public var useAgent: Bool
    /// OpenSSH known_hosts file (already `~`-expanded).
    public var knownHostsPath: String
    public var hostKeyPolicy: ClusterPlan.HostKeyPolicy
    /// Reach this host through another one (direct-tcpip).
    public var bastion: Box<HostEndpoint>?
    public var connectTimeout: Duration

    public init(name: String, address: String, port: Int = 22, user: String, keyPath: String? = nil,
                passphraseEnvironment: String? = "BOOTSTRAP_SSH_PASSPHRASE", useAgent: Bool = true,
                knownHostsPath: String, hostKeyPolicy: ClusterPlan.HostKeyPolicy = .strict,
                bastion: HostEndpoint? = nil, connectTimeout: Duration = .seconds(10)) {
        self.name = name
        self.address = address
        self.port = port
        self.user = user
        self.keyPath = keyPath
        self.passphraseEnvironment = passphraseEnvironment
        self.useAgent = useAgent
        self.knownHostsPath = knownHostsPath
        self.hostKeyPolicy = hostKeyPolicy
        self.bastion = bastion.map(Box.init)
        self.connectTimeout = connectTimeout
    }

    /// `NAME (ADDR:PORT)`, the way errors name a host.
    public var label: String { "\(name) (\(address):\(port))" }
}

/// An indirection so a value type can hold another of its own type.
public final class Box<T: Sendable & Hashable>: Sendable, Hashable {
    public let value: T
    public init(_ value: T) { self.value = value }
    public static func == (a: Box, b: Box) -> Bool { a.value == b.value }
    public func hash(into h: inout Hasher) { h.combine(value) }
}
