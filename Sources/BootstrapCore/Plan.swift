import Foundation

/// The cluster plan after decoding, defaulting and validation: the single source of truth for *what* the
/// cluster should be. Every field holds its final value; defaults are applied in `PlanDefaults` only.
public struct ClusterPlan: Sendable, Hashable, Codable {
    public static let apiVersion = "bootstrap.k8s.lab/v1alpha1"
    public static let kind = "Cluster"

    public var apiVersion: String
    public var kind: String
    public var metadata: Metadata
    public var spec: Spec

    /// Where the plan was read from (`-` for stdin); relative manifest paths resolve against `baseDirectory`.
    public var source: PlanSource

    public init(apiVersion: String = ClusterPlan.apiVersion, kind: String = ClusterPlan.kind,
                metadata: Metadata, spec: Spec, source: PlanSource = PlanSource()) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.metadata = metadata
        self.spec = spec
        self.source = source
    }

    public var name: String { metadata.name }

    public struct Metadata: Sendable, Hashable, Codable {
        public var name: String
        public init(name: String) { self.name = name }
    }

    public struct Spec: Sendable, Hashable, Codable {
        public var kubernetes: Kubernetes
        public var network: Network
        public var ssh: SSHDefaults
        public var hosts: [Host]
        public var containerRuntime: ContainerRuntime
        public var addons: Addons
        public var manifests: [String]
        /// Security defaults per namespace (opt-in): default-deny network policy, limit range, RBAC.
        public var namespaces: [NamespacePolicy]
        public var parallelism: Int
        /// How long each kind of step may take on a host.
        public var timeouts: Timeouts
        /// When the control planes' kubeadm certificates are renewed (`spec.certificates`).
        public var certificates: CertificatePolicy
        /// How a Kubernetes upgrade moves through the workers (`spec.upgrade`).
        public var upgrade: UpgradeSettings
        /// Where more hosts come from (`spec.provider.ec2`); nil: only `hosts`.
        public var provider: Provider?

        public init(kubernetes: Kubernetes, network: Network = Network(), ssh: SSHDefaults = SSHDefaults(),
                    hosts: [Host], containerRuntime: ContainerRuntime = ContainerRuntime(),
                    addons: Addons = Addons(), manifests: [String] = [], namespaces: [NamespacePolicy] = [],
                    parallelism: Int = PlanDefaults.parallelism, timeouts: Timeouts = Timeouts(),
                    certificates: CertificatePolicy = CertificatePolicy(),
                    upgrade: UpgradeSettings = UpgradeSettings(),
                    provider: Provider? = nil) {
            self.kubernetes = kubernetes
            self.network = network
            self.ssh = ssh
            self.hosts = hosts
            self.containerRuntime = containerRuntime
            self.addons = addons
            self.manifests = manifests
            self.namespaces = namespaces
            self.parallelism = parallelism
            self.timeouts = timeouts
            self.certificates = certificates
            self.upgrade = upgrade
            self.provider = provider
        }
    }

    /// `spec.certificates`: a control plane whose kubeadm certificates expire within `renewBefore` (a duration,
    /// `30d`) gets them renewed by apply.
    public struct CertificatePolicy: Sendable, Hashable, Codable {
        public var renewBefore: String

        public init(renewBefore: String = Certificates.defaultRenewBefore) {
            self.renewBefore = renewBefore
        }
    }

    /// `spec.upgrade`: workers are upgraded in batches of `maxUnavailable` (a count, or a percentage of the
    /// workers: `"25%"`), each node drained with `kubectl drain --timeout=drainTimeout s`.
    public struct UpgradeSettings: Sendable, Hashable, Codable {
        public var maxUnavailable: String
        public var drainTimeout: Int

        public init(maxUnavailable: String = PlanDefaults.Upgrade.maxUnavailable,
                    drainTimeout: Int = PlanDefaults.Upgrade.drainTimeout) {
            self.maxUnavailable = maxUnavailable
            self.drainTimeout = drainTimeout
        }

        /// Workers per batch out of `workers` (at least 1), or nil when `maxUnavailable` is malformed.
        public func batchSize(workers: Int) -> Int? {
            let t = maxUnavailable.trimmingCharacters(in: .whitespaces)
            if t.hasSuffix("%") {
                guard let p = Int(t.dropLast()), (1...100).contains(p) else { return nil }
                return max(1, workers * p / 100)
            }
            guard let n = Int(t), n >= 1 else { return nil }
            return n
        }
    }

    /// Time limits, in seconds, per kind of step (`spec.timeouts`). A command that holds a host-wide lock
    /// (packages, kubeadm, a Helm release) may first wait up to the same time for an earlier run's command
    /// that still holds it.
    public struct Timeouts: Sendable, Hashable, Codable {
        /// The package transaction (containerd and the Kubernetes packages, with its index refresh), containerd,
        /// the image pulls.
        public var packages: Int
        /// `kubeadm init`.
        public var `init`: Int
        /// `kubeadm join` (and the reset of a removed host).
        public var join: Int
        /// Each Helm release (`helm upgrade --install --wait` gets this minus a minute as its own --timeout).
        public var helm: Int
        /// Every node Ready after the joins and the CNI.
        public var waitReady: Int

        public init(packages: Int = PlanDefaults.Timeout.packages, init: Int = PlanDefaults.Timeout.initialize,
                    join: Int = PlanDefaults.Timeout.join, helm: Int = PlanDefaults.Timeout.helm,
                    waitReady: Int = PlanDefaults.Timeout.waitReady) {
            self.packages = packages
            self.`init` = `init`
            self.join = join
            self.helm = helm
            self.waitReady = waitReady
        }

        /// Field names in the plan, in order, with their values.
        public var fields: [(name: String, seconds: Int)] {
            [("packages", packages), ("init", `init`), ("join", join), ("helm", helm), ("waitReady", waitReady)]
        }
    }

    public struct Kubernetes: Sendable, Hashable, Codable {
        /// Full version, `MAJOR.MINOR.PATCH`, without a leading `v`.
        public var version: String
        /// `host:port` of the API endpoint (a load balancer or DNS name) shared by all control planes.
        public var controlPlaneEndpoint: String?
        /// Extra subject alternative names for the API server certificate.
        public var certSANs: [String]

        public init(version: String, controlPlaneEndpoint: String? = nil, certSANs: [String] = []) {
            self.version = version
            self.controlPlaneEndpoint = controlPlaneEndpoint
            self.certSANs = certSANs
        }
    }

    public enum CNI: String, Sendable, Hashable, Codable, CaseIterable {
        case calico, flannel
    }

    public enum CalicoEncapsulation: String, Sendable, Hashable, Codable, CaseIterable {
        case vxlan = "VXLAN"
        case ipip = "IPIP"
    }

    public struct Network: Sendable, Hashable, Codable {
        public var cni: CNI
        public var podSubnet: String
        public var serviceSubnet: String
        public var dnsDomain: String
        /// Calico only: how pod traffic crosses nodes.
        public var calicoEncapsulation: CalicoEncapsulation

        public init(cni: CNI = PlanDefaults.cni, podSubnet: String = PlanDefaults.podSubnet(for: PlanDefaults.cni),
                    serviceSubnet: String = PlanDefaults.serviceSubnet, dnsDomain: String = PlanDefaults.dnsDomain,
                    calicoEncapsulation: CalicoEncapsulation = PlanDefaults.calicoEncapsulation) {
            self.cni = cni
            self.podSubnet = podSubnet
            self.serviceSubnet = serviceSubnet
            self.dnsDomain = dnsDomain
            self.calicoEncapsulation = calicoEncapsulation
        }
    }

    public enum HostKeyPolicy: String, Sendable, Hashable, Codable, CaseIterable {
        case strict
        case acceptNew = "accept-new"
        case off
    }

    public struct Bastion: Sendable, Hashable, Codable {
        public var address: String
        public var port: Int
        public var user: String
        public var keyPath: String

        public init(address: String, port: Int = PlanDefaults.sshPort, user: String, keyPath: String) {
            self.address = address
            self.port = port
            self.user = user
            self.keyPath = keyPath
        }
    }

    public struct SSHDefaults: Sendable, Hashable, Codable {
        public var user: String
        public var keyPath: String
        public var knownHosts: String
        public var port: Int
        public var hostKeyPolicy: HostKeyPolicy
        public var bastion: Bastion?
        /// Seconds to wait for a TCP connection and the SSH handshake.
        public var connectTimeout: Int
        /// The fields the plan wrote (`user`, `keyPath`, `knownHosts`, `port`, `hostKeyPolicy`, `bastion`);
        /// the others hold PlanDefaults' values, which `~/.ssh/config` overrides (see `SSHSettings`).
        public var explicit: Set<String>

        public init(user: String = PlanDefaults.sshUser, keyPath: String = PlanDefaults.sshKeyPath,
                    knownHosts: String = PlanDefaults.sshKnownHosts, port: Int = PlanDefaults.sshPort,
                    hostKeyPolicy: HostKeyPolicy = PlanDefaults.hostKeyPolicy, bastion: Bastion? = nil,
                    connectTimeout: Int = PlanDefaults.connectTimeout, explicit: Set<String> = []) {
            self.user = user
            self.keyPath = keyPath
            self.knownHosts = knownHosts
            self.port = port
            self.hostKeyPolicy = hostKeyPolicy
            self.bastion = bastion
            self.connectTimeout = connectTimeout
            self.explicit = explicit
        }

        enum CodingKeys: String, CodingKey {
            case user, keyPath, knownHosts, port, hostKeyPolicy, bastion, connectTimeout, explicit
        }

        /// Plans saved by an earlier version (`plan --out`) have no `explicit`: every field counts as written.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            user = try c.decode(String.self, forKey: .user)
            keyPath = try c.decode(String.self, forKey: .keyPath)
            knownHosts = try c.decode(String.self, forKey: .knownHosts)
            port = try c.decode(Int.self, forKey: .port)
            hostKeyPolicy = try c.decode(HostKeyPolicy.self, forKey: .hostKeyPolicy)
            bastion = try c.decodeIfPresent(Bastion.self, forKey: .bastion)
            connectTimeout = try c.decode(Int.self, forKey: .connectTimeout)
            explicit = try c.decodeIfPresent(Set<String>.self, forKey: .explicit)
                ?? ["user", "keyPath", "knownHosts", "port", "hostKeyPolicy", "bastion"]
        }
    }

    public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
        case controlPlane = "control-plane"
        case worker
    }

    public struct Taint: Sendable, Hashable, Codable {
        public enum Effect: String, Sendable, Hashable, Codable, CaseIterable {
            case noSchedule = "NoSchedule"
            case preferNoSchedule = "PreferNoSchedule"
            case noExecute = "NoExecute"
        }
        public var key: String
        public var value: String?
        public var effect: Effect

        public init(key: String, value: String? = nil, effect: Effect) {
            self.key = key
            self.value = value
            self.effect = effect
        }

        /// `key[=value]:Effect`, the form kubectl takes.
        public var kubectlForm: String { "\(key)\(value.map { "=\($0)" } ?? ""):\(effect.rawValue)" }
    }

    public struct Host: Sendable, Hashable, Codable {
        public var name: String
        /// The address bootstrap reaches the host by over SSH: a public or private IP, or a DNS name.
        public var address: String
        /// The address the cluster uses (kubeadm's advertise address, the kubelet's `--node-ip`, the join
        /// endpoint): the plan's, else the recorded one, else the host's default-route address from its facts
        /// (`ClusterPlan.resolvingPrivateAddresses`); nil while unknown.
        public var privateAddress: String?
        /// The EC2 instance the host was found as (`spec.provider.ec2`); nil for a host the plan lists.
        public var instanceId: String?
        /// The public address of a host found in EC2, when the instance has one: the address `show`'s outputs
        /// use (the operator's way in); nil for a host the plan lists (its `address` is the way in).
        public var publicAddress: String?
        /// The kubelet's `providerID` (`aws:///ZONE/INSTANCE-ID`), from the instance metadata of a host found
        /// in EC2 (`resolvingPrivateAddresses`); nil elsewhere.
        public var providerID: String?
        public var role: Role
        /// Per-host SSH overrides; `nil` means "use `spec.ssh`".
        public var port: Int?
        public var user: String?
        public var keyPath: String?
        public var labels: [String: String]
        public var taints: [Taint]

        public init(name: String, address: String, role: Role, port: Int? = nil, user: String? = nil,
                    keyPath: String? = nil, labels: [String: String] = [:], taints: [Taint] = [],
                    privateAddress: String? = nil) {
            self.name = name
            self.address = address
            self.privateAddress = privateAddress
            self.role = role
            self.port = port
            self.user = user
            self.keyPath = keyPath
            self.labels = labels
            self.taints = taints
        }
    }

    public struct ContainerRuntime: Sendable, Hashable, Codable {
        /// containerd package version; `nil` means the version the OS repository carries.
        public var containerdVersion: String?
        public init(containerdVersion: String? = nil) { self.containerdVersion = containerdVersion }
    }

    public struct Addon: Sendable, Hashable, Codable {
        public var enabled: Bool
        /// Chart version override; `nil` means the pinned default of this tool version.
        public var version: String?
        /// Extra Helm values, merged over the ones generated from the plan.
        public var values: JSONValue
        /// NodePorts of the add-on's user interfaces, by service (`grafana`, `prometheus`, `kibana`, `jaeger`,
        /// `dashboard`); the defaults are in `PlanDefaults.nodePorts`.
        public var nodePorts: [String: Int]
        /// Logging only: the StorageClass of Elasticsearch's data volume. `nil`: no claim, the data lives in the
        /// pod (a kubeadm cluster has no StorageClass or provisioner of its own).
        public var storageClass: String?
        /// Logging only: the size that claim requests; `nil` means `PlanDefaults.loggingStorageSize`.
        public var storageSize: String?

        public init(enabled: Bool = false, version: String? = nil, values: JSONValue = .object([:]),
                    nodePorts: [String: Int] = [:], storageClass: String? = nil, storageSize: String? = nil) {
            self.enabled = enabled
            self.version = version
            self.values = values
            self.nodePorts = nodePorts
            self.storageClass = storageClass
            self.storageSize = storageSize
        }
    }

    /// A role binding of the security defaults: plan-listed users and groups get a built-in role.
    public struct Access: Sendable, Hashable, Codable {
        public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
            case view, edit, admin
        }
        public var role: Role
        public var users: [String]
        public var groups: [String]
        public init(role: Role, users: [String] = [], groups: [String] = []) {
            self.role = role
            self.users = users
            self.groups = groups
        }
    }

    /// Default requests and limits a LimitRange gives containers that state none.
    public struct LimitDefaults: Sendable, Hashable, Codable {
        public var requestCPU: String
        public var requestMemory: String
        public var limitCPU: String
        public var limitMemory: String
        public init(requestCPU: String, requestMemory: String, limitCPU: String, limitMemory: String) {
            self.requestCPU = requestCPU
            self.requestMemory = requestMemory
            self.limitCPU = limitCPU
            self.limitMemory = limitMemory
        }
    }

    /// Security defaults for one namespace, each opt-in.
    public struct NamespacePolicy: Sendable, Hashable, Codable {
        public var name: String
        /// A NetworkPolicy denying all ingress and egress except DNS.
        public var defaultDeny: Bool
        /// A LimitRange with these defaults; nil: none.
        public var limitRange: LimitDefaults?
        public var access: [Access]
        public init(name: String, defaultDeny: Bool = false, limitRange: LimitDefaults? = nil, access: [Access] = []) {
            self.name = name
            self.defaultDeny = defaultDeny
            self.limitRange = limitRange
            self.access = access
        }
    }

    public struct Addons: Sendable, Hashable, Codable {
        public var metricsServer: Addon
        public var monitoring: Addon
        public var logging: Addon
        public var tracing: Addon
        public var dashboard: Addon

        public init(metricsServer: Addon = Addon(), monitoring: Addon = Addon(), logging: Addon = Addon(),
                    tracing: Addon = Addon(), dashboard: Addon = Addon()) {
            self.metricsServer = metricsServer
            self.monitoring = monitoring
            self.logging = logging
            self.tracing = tracing
            self.dashboard = dashboard
        }

        /// Add-ons by their plan key, in a fixed order.
        public var all: [(name: String, addon: Addon)] {
            [("metricsServer", metricsServer), ("monitoring", monitoring), ("logging", logging),
             ("tracing", tracing), ("dashboard", dashboard)]
        }
    }
}

public struct PlanSource: Sendable, Hashable, Codable {
    /// The file name as the user gave it, or `-` for stdin.
    public var path: String
    /// Directory that relative paths in the plan (manifests, state default) resolve against.
    public var baseDirectory: String

    public init(path: String = "-", baseDirectory: String = ".") {
        self.path = path
        self.baseDirectory = baseDirectory
    }
}

extension ClusterPlan.Host {
    /// The address the cluster uses: `privateAddress` when known, else `address`.
    public var clusterAddress: String { privateAddress ?? address }
}

extension ClusterPlan {
    public var controlPlanes: [Host] { spec.hosts.filter { $0.role == .controlPlane } }
    public var workers: [Host] { spec.hosts.filter { $0.role == .worker } }
    /// With no workers, workloads run on the control planes: kubeadm's control-plane taint is removed from
    /// them (as k0sctl's noTaints does), and put back once the plan has workers.
    public var controlPlanesRunWorkloads: Bool { !spec.hosts.contains { $0.role == .worker } }
    /// The taint kubeadm puts on every control plane.
    public static let controlPlaneTaint = Taint(key: "node-role.kubernetes.io/control-plane", effect: .noSchedule)
    /// The control plane that runs `kubeadm init`: the first one listed.
    public var firstControlPlane: Host? { spec.hosts.first { $0.role == .controlPlane } }

    /// `MAJOR.MINOR` of the Kubernetes version.
    public var kubernetesMinor: String {
        spec.kubernetes.version.split(separator: ".").prefix(2).joined(separator: ".")
    }

    /// The SSH settings for one host: its own overrides over `spec.ssh`.
    public func ssh(for host: Host) -> (user: String, port: Int, keyPath: String) {
        (host.user ?? spec.ssh.user, host.port ?? spec.ssh.port, host.keyPath ?? spec.ssh.keyPath)
    }

    /// The API endpoint kubeconfigs use (the operator's way in): the plan's endpoint, or the first control
    /// plane's address (validation asks for an endpoint with more than one control plane, so this is the only
    /// one, which cannot leave: `Blockers`).
    public var apiEndpoint: String {
        if let e = spec.kubernetes.controlPlaneEndpoint { return e }
        return "\(firstControlPlane?.address ?? "127.0.0.1"):6443"
    }

    /// The API endpoint nodes join through (inside the cluster's network): the plan's endpoint, or the first
    /// control plane's cluster address.
    public var joinEndpoint: String {
        if let e = spec.kubernetes.controlPlaneEndpoint { return e }
        return "\(firstControlPlane?.clusterAddress ?? "127.0.0.1"):6443"
    }

    /// The plan with each host's `privateAddress` filled in where the plan leaves it out: the one recorded in
    /// the state for the same host (same address and role), else the default-route address of its facts
    /// (`facts`, fresh from the host, before the state's). Hosts nothing is known about keep nil.
    public func resolvingPrivateAddresses(state: ClusterState?, facts: [String: HostFacts] = [:]) -> ClusterPlan {
        var out = self
        for i in out.spec.hosts.indices where out.spec.hosts[i].privateAddress == nil {
            let h = out.spec.hosts[i]
            let rec = state?.hosts[h.name].flatMap { $0.address == h.address && $0.role == h.role ? $0 : nil }
            // A node made before privateAddress was recorded advertises its SSH address.
            let joined = rec.map { r in
                [StepName.initControlPlane, .joinControlPlane, .joinWorker].contains { r.steps[$0.rawValue] != nil }
            } ?? false
            out.spec.hosts[i].privateAddress = rec?.privateAddress ?? (joined ? h.address : nil)
                ?? facts[h.name]?.defaultAddress ?? rec?.facts?.defaultAddress
        }
        // Hosts found in EC2: their zone, region and instance type as labels (the plan's own labels win) and
        // the kubelet's providerID, from the instance metadata in their facts.
        for i in out.spec.hosts.indices where out.spec.hosts[i].instanceId != nil {
            let h = out.spec.hosts[i]
            let rec = state?.hosts[h.name].flatMap { $0.address == h.address ? $0 : nil }
            guard let md = facts[h.name]?.instance ?? rec?.facts?.instance else { continue }
            out.spec.hosts[i].labels = h.labels.merging(md.labels) { own, _ in own }
            out.spec.hosts[i].providerID = md.providerID
        }
        return out
    }
}

extension KeyedDecodingContainer {
    /// Plans saved by an earlier version (`plan --out`) have no `timeouts`: they get the defaults.
    public func decode(_ type: ClusterPlan.Timeouts.Type, forKey key: Key) throws -> ClusterPlan.Timeouts {
        try decodeIfPresent(type, forKey: key) ?? ClusterPlan.Timeouts()
    }

    /// Plans saved before `spec.certificates` existed get the default.
    public func decode(_ type: ClusterPlan.CertificatePolicy.Type, forKey key: Key) throws
        -> ClusterPlan.CertificatePolicy
    {
        try decodeIfPresent(type, forKey: key) ?? ClusterPlan.CertificatePolicy()
    }

    /// Plans saved before `spec.upgrade` existed get the default.
    public func decode(_ type: ClusterPlan.UpgradeSettings.Type, forKey key: Key) throws
        -> ClusterPlan.UpgradeSettings
    {
        try decodeIfPresent(type, forKey: key) ?? ClusterPlan.UpgradeSettings()
    }
}
