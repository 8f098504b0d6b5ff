// The host protocols, endpoints, command results, transport failures, the cancellation flag and
// `BlockingQueue` live in `BootstrapTransport`, the layer the SSH transport builds on. Everything that
// imports the engine sees them too.
@_exported import BootstrapTransport
import BootstrapCore

extension HostEndpoint {
    /// The engine's `EndpointResolver` for `plan`: the one place a host's endpoint is worked out. Each host's
    /// settings come from `SSHSettings.resolve` (what the plan writes for the host, then `spec.ssh`, then
    /// `config`, then the defaults); a host only the state knows (being removed or replaced) is looked up at
    /// the address asked for, its recorded port counting as written unless it is the plan's port. Paths are
    /// `~`-expanded against `home`.
    public static func resolver(plan: ClusterPlan, config: SSHConfig?, home: String) -> EndpointResolver {
        let timeout = Duration.seconds(plan.spec.ssh.connectTimeout)
        @Sendable func expand(_ path: String) -> String { path.hasPrefix("~") ? home + path.dropFirst() : path }
        return { name, address, port in
            var host = plan.spec.hosts.first { $0.name == name }
                ?? ClusterPlan.Host(name: name, address: address, role: .worker,
                                    port: port == plan.spec.ssh.port ? nil : port)
            host.address = address
            let s = SSHSettings.resolve(plan: plan, host: host, config: config)
            let knownHosts = expand(s.knownHosts.value)
            let bastion = s.bastion.value.map { b in
                HostEndpoint(name: "bastion", address: b.address.value, port: b.port.value, user: b.user.value,
                             keyPath: expand(b.keyPath.value), knownHostsPath: knownHosts,
                             hostKeyPolicy: s.hostKeyPolicy.value, connectTimeout: timeout)
            }
            return HostEndpoint(
                name: name, address: s.address.value, port: s.port.value, user: s.user.value,
                keyPath: expand(s.keyPath.value), knownHostsPath: knownHosts, hostKeyPolicy: s.hostKeyPolicy.value,
                bastion: bastion, connectTimeout: timeout)
        }
    }
}
