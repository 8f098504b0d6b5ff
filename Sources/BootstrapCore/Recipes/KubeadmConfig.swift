import Foundation
import Yams

/// kubeadm configuration files generated from the plan, in the v1beta4 API (Kubernetes 1.31 and later: every
/// version in `KubernetesReleases`).
public enum KubeadmConfig {
    public static let criSocket = "unix:///var/run/containerd/containerd.sock"
    public static let tokenTTL = "2h0m0s"
    public static let apiVersion = "kubeadm.k8s.io/v1beta4"

    struct BootstrapToken: Encodable {
        var token: String
        var ttl: String
        var groups = ["system:bootstrappers:kubeadm:default-node-token"]
        var usages = ["signing", "authentication"]
    }

    struct APIEndpoint: Encodable {
        var advertiseAddress: String
        var bindPort: Int
    }

    struct Arg: Encodable {
        var name: String
        var value: String
    }

    struct NodeRegistration: Encodable {
        var name: String
        var criSocket: String
        /// v1beta4's list form; only the kubelet's `--node-ip` (the host's cluster address), when known.
        var kubeletExtraArgs: [Arg]?

        init(host: ClusterPlan.Host) {
            name = host.name
            criSocket = KubeadmConfig.criSocket
            kubeletExtraArgs = host.privateAddress.map { [Arg(name: "node-ip", value: $0)] }
        }
    }

    struct InitConfiguration: Encodable {
        var apiVersion: String
        var kind = "InitConfiguration"
        var bootstrapTokens: [BootstrapToken]
        var certificateKey: String
        var localAPIEndpoint: APIEndpoint
        var nodeRegistration: NodeRegistration
    }

    struct Networking: Encodable {
        var podSubnet: String
        var serviceSubnet: String
        var dnsDomain: String
    }

    struct APIServer: Encodable {
        var certSANs: [String]?
    }

    struct ClusterConfiguration: Encodable {
        var apiVersion: String
        var kind = "ClusterConfiguration"
        var clusterName: String
        var kubernetesVersion: String
        var controlPlaneEndpoint: String?
        var networking: Networking
        var apiServer: APIServer
    }

    struct KubeletConfiguration: Encodable {
        var apiVersion = "kubelet.config.k8s.io/v1beta1"
        var kind = "KubeletConfiguration"
        var cgroupDriver = "systemd"
        var providerID: String?
    }

    /// `InitConfiguration` + `ClusterConfiguration` + `KubeletConfiguration` for the first control plane. The
    /// API server advertises the host's cluster address; its certificate names that, the SSH address and the
    /// public address (an EC2 instance's) too.
    /// Carries the bootstrap token and certificate key: upload it 0600 and never show it.
    public static func initConfig(plan: ClusterPlan, host: ClusterPlan.Host, token: Secret, certificateKey: Secret)
        throws -> String
    {
        let api = apiVersion
        let k = plan.spec.kubernetes
        let net = plan.spec.network
        var sans = k.certSANs
        if let endpoint = k.controlPlaneEndpoint { sans.append(hostPart(endpoint)) }
        sans.append(host.clusterAddress)
        sans.append(host.address)
        // The instance's public address, so that `show`'s API endpoint works from outside the VPC. Not an input
        // of the init step: init never runs twice, so a later public address could not reach the certificate.
        if let p = host.publicAddress { sans.append(p) }
        var seen = Set<String>()
        sans = sans.filter { seen.insert($0).inserted }
        let initDoc = InitConfiguration(
            apiVersion: api,
            bootstrapTokens: [BootstrapToken(token: token.revealed, ttl: tokenTTL)],
            certificateKey: certificateKey.revealed,
            localAPIEndpoint: APIEndpoint(advertiseAddress: host.clusterAddress, bindPort: 6443),
            nodeRegistration: NodeRegistration(host: host))
        let clusterDoc = ClusterConfiguration(
            apiVersion: api, clusterName: plan.name, kubernetesVersion: "v" + k.version,
            controlPlaneEndpoint: k.controlPlaneEndpoint,
            networking: Networking(podSubnet: net.podSubnet, serviceSubnet: net.serviceSubnet, dnsDomain: net.dnsDomain),
            apiServer: APIServer(certSANs: sans))
        let encoder = YAMLEncoder()
        return try [encoder.encode(initDoc), encoder.encode(clusterDoc), encoder.encode(KubeletConfiguration(providerID: host.providerID))]
            .joined(separator: "---\n")
    }

    struct TokenDiscovery: Encodable {
        var apiServerEndpoint: String
        var token: String
        var caCertHashes: [String]
    }

    struct Discovery: Encodable {
        var bootstrapToken: TokenDiscovery
    }

    struct JoinControlPlane: Encodable {
        var localAPIEndpoint: APIEndpoint
        var certificateKey: String
    }

    struct JoinConfiguration: Encodable {
        var apiVersion: String
        var kind = "JoinConfiguration"
        var discovery: Discovery
        var nodeRegistration: NodeRegistration
        var controlPlane: JoinControlPlane?
    }

    /// `JoinConfiguration` for a worker, or a control plane when `certificateKey` is given.
    public static func joinConfig(plan: ClusterPlan, host: ClusterPlan.Host, token: Secret, caCertHash: String,
                                  certificateKey: Secret?) throws -> String
    {
        let doc = JoinConfiguration(
            apiVersion: apiVersion,
            discovery: Discovery(bootstrapToken: TokenDiscovery(
                apiServerEndpoint: plan.joinEndpoint, token: token.revealed, caCertHashes: [caCertHash])),
            nodeRegistration: NodeRegistration(host: host),
            controlPlane: certificateKey.map {
                JoinControlPlane(localAPIEndpoint: APIEndpoint(advertiseAddress: host.clusterAddress, bindPort: 6443),
                                 certificateKey: $0.revealed)
            })
        return try YAMLEncoder().encode(doc) + (try YAMLEncoder().encode(KubeletConfiguration(providerID: host.providerID))).withSeparator
    }

    public static func hostPart(_ endpoint: String) -> String {
        if let colon = endpoint.lastIndex(of: ":") { return String(endpoint[..<colon]) }
        return endpoint
    }
}

extension String {
    fileprivate var withSeparator: String { "---\n" + self }
}

/// Fresh random secrets in the formats kubeadm expects.
public enum SecretGenerator {
    private static let tokenAlphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")

    /// `[a-z0-9]{6}.[a-z0-9]{16}`
    public static func bootstrapToken() -> Secret {
        var rng = SystemRandomNumberGenerator()
        func part(_ n: Int) -> String { String((0..<n).map { _ in tokenAlphabet.randomElement(using: &rng)! }) }
        return Secret(part(6) + "." + part(16))
    }

    /// 32 random bytes as 64 hex characters.
    public static func certificateKey() -> Secret {
        var rng = SystemRandomNumberGenerator()
        return Secret(Hashing.hex((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }))
    }

    /// A password of letters and digits.
    public static func password(length: Int = 24) -> Secret {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
        return Secret(String((0..<length).map { _ in alphabet.randomElement(using: &rng)! }))
    }
}
