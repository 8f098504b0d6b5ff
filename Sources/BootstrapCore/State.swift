import Foundation

/// What has been done to the cluster, as recorded after every finished step. Persisted as one JSON file.
public struct ClusterState: Sendable, Hashable, Codable {
    /// The newest on-disk format this tool reads and writes.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    /// Incremented on every write.
    public var serial: Int
    /// A UUID fixed when the state is created; a plan saved against another lineage is refused.
    public var lineage: String
    public var toolVersion: String
    public var cluster: ClusterRecord
    public var hosts: [String: HostRecord]
    public var addons: [String: AddonRecord]
    /// Manifest objects applied from `spec.manifests`, keyed by `kind/namespace/name`.
    public var manifests: [String: ManifestRecord]
    /// Backups taken by `bootstrap backup`, oldest first (absent in state files written before backups).
    public var backups: [BackupRecord]
    /// Restores done by `bootstrap restore`, oldest first (absent when there were none).
    public var restores: [RestoreRecord]

    public init(name: String, lineage: String = UUID().uuidString.lowercased(), toolVersion: String) {
        self.formatVersion = ClusterState.currentFormatVersion
        self.serial = 0
        self.lineage = lineage
        self.toolVersion = toolVersion
        self.cluster = ClusterRecord(name: name)
        self.hosts = [:]
        self.addons = [:]
        self.manifests = [:]
        self.backups = []
        self.restores = []
    }

    /// True when nothing has been done yet (a fresh or destroyed cluster).
    public var isEmpty: Bool {
        hosts.isEmpty && addons.isEmpty && manifests.isEmpty && cluster.initializedOn == nil
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion, serial, lineage, toolVersion, cluster, hosts, addons, manifests, backups, restores
    }

    /// Refuses what no write of ours produces: a negative serial (every write counts up from 0).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try c.decode(Int.self, forKey: .formatVersion)
        serial = try c.decode(Int.self, forKey: .serial)
        if serial < 0 {
            throw DecodingError.dataCorruptedError(forKey: .serial, in: c,
                                                   debugDescription: "serial \(serial) is negative")
        }
        lineage = try c.decode(String.self, forKey: .lineage)
        toolVersion = try c.decode(String.self, forKey: .toolVersion)
        cluster = try c.decode(ClusterRecord.self, forKey: .cluster)
        hosts = try c.decode([String: HostRecord].self, forKey: .hosts)
        addons = try c.decode([String: AddonRecord].self, forKey: .addons)
        manifests = try c.decode([String: ManifestRecord].self, forKey: .manifests)
        backups = try c.decodeIfPresent([BackupRecord].self, forKey: .backups) ?? []
        restores = try c.decodeIfPresent([RestoreRecord].self, forKey: .restores) ?? []
    }

    /// `backups` only when there are some: a state without backups reads as before.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(serial, forKey: .serial)
        try c.encode(lineage, forKey: .lineage)
        try c.encode(toolVersion, forKey: .toolVersion)
        try c.encode(cluster, forKey: .cluster)
        try c.encode(hosts, forKey: .hosts)
        try c.encode(addons, forKey: .addons)
        try c.encode(manifests, forKey: .manifests)
        if !backups.isEmpty { try c.encode(backups, forKey: .backups) }
        if !restores.isEmpty { try c.encode(restores, forKey: .restores) }
    }
}

/// A backup archive written by `bootstrap backup`.
public struct BackupRecord: Sendable, Hashable, Codable {
    public var path: String
    public var createdAt: Date
    public var size: Int
    /// SHA-256 of the whole archive file.
    public var sha256: String

    public init(path: String, createdAt: Date, size: Int, sha256: String) {
        self.path = path
        self.createdAt = createdAt
        self.size = size
        self.sha256 = sha256
    }
}

/// A restore done by `bootstrap restore`: which archive, the time of its snapshot, where and when it was restored.
public struct RestoreRecord: Sendable, Hashable, Codable {
    /// The archive's path, as given (absolute).
    public var path: String
    /// SHA-256 of the whole archive file.
    public var sha256: String
    /// When the snapshot was taken: the cluster's objects and releases are those of this time.
    public var snapshotCreatedAt: Date
    public var restoredAt: Date
    /// The control plane the snapshot was restored on (the others re-joined it).
    public var restoredOn: String

    public init(path: String, sha256: String, snapshotCreatedAt: Date, restoredAt: Date, restoredOn: String) {
        self.path = path
        self.sha256 = sha256
        self.snapshotCreatedAt = snapshotCreatedAt
        self.restoredAt = restoredAt
        self.restoredOn = restoredOn
    }
}

public struct ClusterRecord: Sendable, Hashable, Codable {
    public var name: String
    public var kubernetesVersion: String?
    public var endpoint: String?
    public var cni: String?
    public var podSubnet: String?
    public var serviceSubnet: String?
    /// Host that ran `kubeadm init`; set once init has finished.
    public var initializedOn: String?
    /// `sha256:…` of the cluster CA's public key, as `kubeadm join` wants it.
    public var caCertHash: String?
    /// Named secrets with expiry: `bootstrapToken`, `certificateKey`, `grafanaAdminPassword`, …
    public var secrets: [String: SecretRecord]
    /// Finished cluster-level steps by `ClusterStepName` (`helm`, `kubeconfig`), like `HostRecord.steps`.
    public var steps: [String: StepRecord]
    /// The Kubernetes upgrade under way or last made (absent before the first one).
    public var upgrade: UpgradeRecord?

    public init(name: String) {
        self.name = name
        self.secrets = [:]
        self.steps = [:]
    }

    enum CodingKeys: String, CodingKey {
        case name, kubernetesVersion, endpoint, cni, podSubnet, serviceSubnet, initializedOn, caCertHash, secrets, steps
        case upgrade
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        kubernetesVersion = try c.decodeIfPresent(String.self, forKey: .kubernetesVersion)
        endpoint = try c.decodeIfPresent(String.self, forKey: .endpoint)
        cni = try c.decodeIfPresent(String.self, forKey: .cni)
        podSubnet = try c.decodeIfPresent(String.self, forKey: .podSubnet)
        serviceSubnet = try c.decodeIfPresent(String.self, forKey: .serviceSubnet)
        initializedOn = try c.decodeIfPresent(String.self, forKey: .initializedOn)
        caCertHash = try c.decodeIfPresent(String.self, forKey: .caCertHash)
        secrets = try c.decodeIfPresent([String: SecretRecord].self, forKey: .secrets) ?? [:]
        steps = try c.decodeIfPresent([String: StepRecord].self, forKey: .steps) ?? [:]
        upgrade = try c.decodeIfPresent(UpgradeRecord.self, forKey: .upgrade)
    }
}

/// A Kubernetes upgrade, recorded as it goes so that a re-run resumes it: the etcd snapshot taken before
/// anything changed, whether `kubeadm upgrade apply` finished, and each host's progress.
public struct UpgradeRecord: Sendable, Hashable, Codable {
    public var from: String
    public var to: String
    public var startedAt: Date
    /// The etcd snapshot taken on the first control plane before the upgrade (kept on that host).
    public var snapshot: EtcdSnapshotRecord?
    /// `kubeadm upgrade apply` finished on the first control plane.
    public var applied: Bool
    /// Hosts whose `kubeadm upgrade apply|node` finished, whose packages and kubelet may still be pending.
    public var kubeadmDone: [String]
    /// Set when every host runs the new version.
    public var finishedAt: Date?

    public init(from: String, to: String, startedAt: Date) {
        self.from = from
        self.to = to
        self.startedAt = startedAt
        self.applied = false
        self.kubeadmDone = []
    }
}

/// An etcd snapshot kept on a control plane.
public struct EtcdSnapshotRecord: Sendable, Hashable, Codable {
    public var host: String
    public var path: String
    public var createdAt: Date
    public var size: Int
    public var sha256: String

    public init(host: String, path: String, createdAt: Date, size: Int, sha256: String) {
        self.host = host
        self.path = path
        self.createdAt = createdAt
        self.size = size
        self.sha256 = sha256
    }
}

public struct SecretRecord: Sendable, Hashable, Codable {
    public var value: Secret
    public var expiresAt: Date?

    public init(value: Secret, expiresAt: Date? = nil) {
        self.value = value
        self.expiresAt = expiresAt
    }

    public func isValid(at now: Date, margin: TimeInterval = 60) -> Bool {
        guard let e = expiresAt else { return true }
        return e.timeIntervalSince(now) > margin
    }
}

/// What was learned about a host over SSH.
public struct HostFacts: Sendable, Hashable, Codable {
    public var hostname: String
    public var osID: String            // ubuntu, debian, amzn
    public var osVersion: String       // 22.04, 12, 2023
    public var architecture: String    // amd64 / arm64 (dpkg names)
    public var cpus: Int
    public var memoryMB: Int
    public var swapOn: Bool
    public var machineID: String
    public var productUUID: String
    /// Installed versions of the packages we manage (`kubeadm`, `kubelet`, `kubectl`, `containerd`).
    public var packages: [String: String]
    /// `/etc/kubernetes/kubelet.conf` exists: the host is already a node of some cluster.
    public var inCluster: Bool
    /// On a control plane: its kubeadm certificates' expiry (`kubeadm certs check-expiration`).
    public var certificates: CertificateExpiry?

    /// The IPv4 address of the default route's interface (the one kubeadm advertises when told none);
    /// nil when the host has no default route or the facts predate it.
    public var defaultAddress: String?
    /// What the EC2 instance metadata service (IMDSv2) says, read on hosts found in EC2; nil elsewhere.
    public var instance: InstanceMetadata?

    public init(hostname: String, osID: String, osVersion: String, architecture: String, cpus: Int,
                memoryMB: Int, swapOn: Bool, machineID: String, productUUID: String,
                packages: [String: String] = [:], inCluster: Bool = false, certificates: CertificateExpiry? = nil,
                defaultAddress: String? = nil) {
        self.hostname = hostname
        self.osID = osID
        self.osVersion = osVersion
        self.architecture = architecture
        self.cpus = cpus
        self.memoryMB = memoryMB
        self.swapOn = swapOn
        self.machineID = machineID
        self.productUUID = productUUID
        self.packages = packages
        self.inCluster = inCluster
        self.certificates = certificates
        self.defaultAddress = defaultAddress
    }
}

/// An EC2 instance's own view of itself, from IMDSv2.
public struct InstanceMetadata: Sendable, Hashable, Codable {
    public var instanceId: String
    public var instanceType: String
    public var availabilityZone: String
    public var region: String
    public init(instanceId: String, instanceType: String, availabilityZone: String, region: String) {
        self.instanceId = instanceId
        self.instanceType = instanceType
        self.availabilityZone = availabilityZone
        self.region = region
    }

    /// The kubelet's `providerID`, as the AWS cloud provider writes it.
    public var providerID: String { "aws:///\(availabilityZone)/\(instanceId)" }

    /// The well-known labels a cloud controller would set.
    public var labels: [String: String] {
        ["topology.kubernetes.io/zone": availabilityZone, "topology.kubernetes.io/region": region,
         "node.kubernetes.io/instance-type": instanceType]
    }
}

public struct StepRecord: Sendable, Hashable, Codable {
    /// Hash of everything the step's result depends on; a different hash means the step must run again.
    public var inputHash: String
    public var finishedAt: Date

    public init(inputHash: String, finishedAt: Date) {
        self.inputHash = inputHash
        self.finishedAt = finishedAt
    }
}

public struct HostRecord: Sendable, Hashable, Codable {
    public var address: String
    /// The address the cluster knows the node by (advertise address, node IP); nil in states that predate it.
    public var privateAddress: String?
    /// The EC2 instance the host was found as, when it came from `spec.provider.ec2`.
    public var instanceId: String?
    /// The instance's public address when it has one (as last discovered): `show` prints it in the outputs.
    public var publicAddress: String?
    public var port: Int
    public var role: ClusterPlan.Role
    public var labels: [String: String]
    public var taints: [ClusterPlan.Taint]
    public var facts: HostFacts?
    /// Finished steps by `StepName` (`prepare`, `containerd`, `kubernetes-repo`, `kubernetes-packages`, `init`,
    /// `join-control-plane`, `join-worker`, `node-config`).
    public var steps: [String: StepRecord]

    public init(address: String, port: Int, role: ClusterPlan.Role, labels: [String: String] = [:],
                taints: [ClusterPlan.Taint] = [], facts: HostFacts? = nil, steps: [String: StepRecord] = [:],
                privateAddress: String? = nil, instanceId: String? = nil) {
        self.address = address
        self.privateAddress = privateAddress
        self.instanceId = instanceId
        self.port = port
        self.role = role
        self.labels = labels
        self.taints = taints
        self.facts = facts
        self.steps = steps
    }
}

public struct AddonRecord: Sendable, Hashable, Codable {
    /// The plan's add-on key (`monitoring`, …) or `cni`.
    public var addon: String
    public var release: String
    public var namespace: String
    public var chart: String
    public var repoURL: String
    public var version: String
    /// `HelmRelease.valuesHash` of what was installed.
    public var valuesHash: String
    /// The final values (secrets as placeholders), so `plan` can name the changed value paths.
    public var values: JSONValue
    /// User interfaces exposed, by service: NodePort (for `show`).
    public var nodePorts: [String: Int]

    public init(_ r: HelmRelease) {
        addon = r.addon
        release = r.name
        namespace = r.namespace
        chart = r.chart.chart
        repoURL = r.chart.repoURL
        version = r.chart.version
        valuesHash = r.valuesHash
        values = r.values
        nodePorts = r.nodePorts
    }
}

public struct ManifestRecord: Sendable, Hashable, Codable {
    /// Where the object came from: a manifest path as the plan gives it, or the generating plan field.
    public var file: String
    /// `KubeObject.hash` of what was applied.
    public var hash: String
    /// Enough to delete the object when it leaves the plan.
    public var apiVersion: String?

    public init(file: String, hash: String, apiVersion: String? = nil) {
        self.file = file
        self.hash = hash
        self.apiVersion = apiVersion
    }

    public init(_ o: KubeObject) {
        self.init(file: o.source, hash: o.hash, apiVersion: o.apiVersion)
    }
}

extension ClusterState {
    /// The state a complete apply of `plan` leaves: every step, release and object recorded as done. What
    /// `plan` diffs to "No changes"; for the bench fixture and tests.
    public static func converged(_ plan: ClusterPlan, objects: [KubeObject] = [], at date: Date,
                                 lineage: String = UUID().uuidString.lowercased(),
                                 toolVersion: String = ToolVersion.current) -> ClusterState
    {
        var s = ClusterState(name: plan.name, lineage: lineage, toolVersion: toolVersion)
        s.cluster.kubernetesVersion = plan.spec.kubernetes.version
        s.cluster.endpoint = plan.apiEndpoint
        s.cluster.cni = plan.spec.network.cni.rawValue
        s.cluster.podSubnet = plan.spec.network.podSubnet
        s.cluster.serviceSubnet = plan.spec.network.serviceSubnet
        s.cluster.initializedOn = plan.firstControlPlane?.name
        s.cluster.steps = Dictionary(uniqueKeysWithValues: ClusterStepCatalogue.steps(in: plan).map {
            ($0.name.rawValue, StepRecord(inputHash: $0.inputHash, finishedAt: date))
        })
        for h in plan.spec.hosts {
            var rec = HostRecord(address: h.address, port: plan.ssh(for: h).port, role: h.role, labels: h.labels,
                                 taints: h.taints, privateAddress: h.privateAddress,
                                 instanceId: h.instanceId)
            rec.publicAddress = h.publicAddress
            for step in StepCatalogue.steps(for: h, in: plan) {
                rec.steps[step.name.rawValue] = StepRecord(inputHash: step.inputHash, finishedAt: date)
            }
            s.hosts[h.name] = rec
        }
        for r in Releases.desired(for: plan) { s.addons[r.key] = AddonRecord(r) }
        for o in objects { s.manifests[o.key] = ManifestRecord(o) }
        return s
    }
}
