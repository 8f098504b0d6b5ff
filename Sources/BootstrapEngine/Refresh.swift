import BootstrapCore
import Foundation

/// What the hosts' facts say against the recorded state: the refresh `apply` does before acting and
/// `plan --refresh` does to show drift. One facts round trip per host; nothing on a host changes.
public enum Refresh {
    /// The host records `facts` imply: new plan hosts get a record, facts are updated, and steps the facts
    /// contradict are forgotten (so they run again), each with the drift that explains it. Hosts in
    /// `removals` (leaving, or being replaced) keep their records; hosts without facts are left as they are.
    /// `plan` has its private addresses resolved (`resolvingPrivateAddresses`): a record gets the one it lacks.
    public static func records(plan: ClusterPlan, state: ClusterState, facts: [String: HostFacts],
                               removals: Set<String>) -> (hosts: [String: HostRecord], drift: [HostDrift])
    {
        var drifts: [HostDrift] = []
        var next = state.hosts
        for host in plan.spec.hosts {
            guard let f = facts[host.name] else { continue }
            let port = plan.ssh(for: host).port
            guard var rec = next[host.name], !removals.contains(host.name) else {
                if removals.contains(host.name) { continue }  // recreated after its removal
                var rec = HostRecord(address: host.address, port: port, role: host.role, facts: f,
                                     privateAddress: host.recordedClusterAddress, instanceId: host.instanceId)
                rec.publicAddress = host.publicAddress
                next[host.name] = rec
                continue
            }
            if let old = rec.facts {
                if old.machineID != f.machineID, !old.machineID.isEmpty {
                    drifts.append(HostDrift(host: host.name, message: "machine-id changed (\(old.machineID.prefix(8))… → \(f.machineID.prefix(8))…): the machine was replaced; its steps will run again",
                                        steps: rec.steps.keys.sorted()))
                    rec.steps = [:]
                }
                if old.hostname != f.hostname {
                    drifts.append(HostDrift(host: host.name, message: "hostname changed: \(old.hostname) → \(f.hostname)"))
                }
                if old.osID != f.osID || old.osVersion != f.osVersion {
                    drifts.append(HostDrift(host: host.name, message: "OS changed: \(old.osID) \(old.osVersion) → \(f.osID) \(f.osVersion)"))
                }
            }
            if let os = NodeOSes.for(f) {
                // During an upgrade, a node not upgraded yet is expected at the cluster's recorded version.
                var expected = plan.spec.kubernetes.version
                if let cluster = state.cluster.kubernetesVersion, cluster != expected,
                   rec.steps[StepName.kubernetesPackages.rawValue]?.inputHash
                       == Upgrade.stepHash(plan, version: cluster, step: .kubernetesPackages)
                {
                    expected = cluster
                }
                let want = os.kubernetesPackageVersion(expected)
                if rec.steps[StepName.kubernetesPackages.rawValue] != nil,
                   NodeRecipes.kubernetesPackages.contains(where: { f.packages[$0] != want })
                {
                    let drift = packagesDrift(host: host.name, facts: f, want: want, expected: expected,
                                              apiServer: state.cluster.kubernetesVersion, node: Upgrade.isNode(rec))
                    drifts.append(drift)
                    for s in drift.steps { rec.steps[s] = nil }
                }
                if rec.steps[StepName.containerd.rawValue] != nil, f.packages["containerd"] == nil {
                    drifts.append(HostDrift(host: host.name, message: "containerd is not installed any more; it will be installed again",
                                        steps: [StepName.containerd.rawValue]))
                    rec.steps[StepName.containerd.rawValue] = nil
                }
                if rec.steps[StepName.prepare.rawValue] != nil, f.swapOn {
                    drifts.append(HostDrift(host: host.name, message: "swap is on again; the host will be prepared again",
                                        steps: [StepName.prepare.rawValue]))
                    rec.steps[StepName.prepare.rawValue] = nil
                }
            }
            rec.facts = f
            if rec.privateAddress == nil { rec.privateAddress = host.recordedClusterAddress }
            if let id = host.instanceId { rec.instanceId = id }
            // A public address comes and goes with the instance (stop and start without an Elastic IP).
            if host.instanceId != nil { rec.publicAddress = host.publicAddress }
            next[host.name] = rec
        }
        return (next, drifts)
    }

    /// A node whose Kubernetes packages are not at the version the state expects: a run stopped half-way, or a
    /// package changed by hand (a node upgraded by hand makes a mixed-version cluster). They are installed
    /// again at `expected` (`want` as the package manager spells it), the kubelet restarted on a node of the
    /// cluster (`KubernetesPackagesStep`); when another minor's package is installed, the repository the host
    /// points at was changed too and is written again. A kubelet newer than the API server (`apiServer`) says
    /// why it must go back: the version skew policy never allows it, and such a kubelet does not register.
    static func packagesDrift(host: String, facts f: HostFacts, want: String, expected: String, apiServer: String?,
                              node: Bool) -> HostDrift
    {
        let have = NodeRecipes.kubernetesPackages.map { "\($0) \(f.packages[$0] ?? "missing")" }.joined(separator: ", ")
        /// `1.36.1` of `1.36.1-1.1` (apt) or `1.36.1` (dnf).
        func release(_ pkg: String) -> String? {
            f.packages[pkg].flatMap { $0.split(separator: "-").first.map(String.init) }
                .flatMap { KubernetesReleases.triple($0) != nil ? $0 : nil }
        }
        let minor = { (v: String) in KubernetesReleases.triple(v).map { "\($0[0]).\($0[1])" } }
        var steps = [StepName.kubernetesPackages.rawValue]
        if NodeRecipes.kubernetesPackages.contains(where: { p in release(p).map { minor($0) != minor(expected) } ?? false }) {
            steps.insert(StepName.kubernetesRepo.rawValue, at: 0)
        }
        let then = node ? "they will be installed at \(expected) again and the kubelet restarted"
                        : "they will be installed again"
        if node, let api = apiServer, let kubelet = release("kubelet"),
           !KubernetesReleases.kubeletSkewAllowed(kubelet: kubelet, apiServer: api)
        {
            let why = KubernetesReleases.triple(api).map { a in
                KubernetesReleases.triple(kubelet).map { a.lexicographicallyPrecedes($0) } ?? false
            } ?? false
                ? "newer than the API server (\(api)), which the version skew policy never allows: it cannot register"
                : "more than \(KubernetesReleases.kubeletMaxMinorsBehind) minors older than the API server (\(api)), outside the version skew policy"
            return HostDrift(host: host, message: "the kubelet is \(kubelet), \(why) (\(have)); \(then)", steps: steps)
        }
        return HostDrift(host: host, message: "Kubernetes packages are not at \(want) (\(have)); \(then)", steps: steps)
    }
}

/// `plan --refresh`: the recorded state as the hosts show it now, read-only. Connects to every plan host
/// the state has a record of (the same transport and options as apply), reads its facts and applies them to
/// the records in memory. Nothing on a host changes and nothing is written.
public struct PlanRefresh: Sendable {
    public struct Result: Sendable {
        /// The state with the refreshed host records (in memory only).
        public var state: ClusterState
        public var drift: [HostDrift]
        /// Hosts that could not be refreshed, with why; their records are used as they are.
        public var failures: [(host: String, reason: String)]
        public var refreshed: [String]
    }

    let plan: ClusterPlan
    let transport: any HostTransport
    let resolve: EndpointResolver
    let parallelism: Int
    let events: EventSink

    public init(plan: ClusterPlan, transport: any HostTransport, resolve: @escaping EndpointResolver,
                parallelism: Int, events: @escaping EventSink = { _ in })
    {
        self.plan = plan
        self.transport = transport
        self.resolve = resolve
        self.parallelism = parallelism
        self.events = events
    }

    /// The hosts worth refreshing: in the plan and recorded at the same address and role (new hosts are
    /// created and replaced ones rebuilt whatever their facts say).
    public static func hosts(plan: ClusterPlan, state: ClusterState) -> [ClusterPlan.Host] {
        plan.spec.hosts.filter { h in
            guard let rec = state.hosts[h.name] else { return false }
            return rec.address == h.address && rec.role == h.role
        }
    }

    /// Every session opened is closed before this returns.
    public func run(state: ClusterState) async -> Result {
        let hosts = Self.hosts(plan: plan, state: state)
        let redactor = Redactor(state.cluster.secrets.values.map(\.value))
        let endpoints = hosts.map { resolve($0.name, $0.address, plan.ssh(for: $0).port) }
        let ec2 = Set(hosts.filter { $0.instanceId != nil }.map(\.name))
        let events = self.events
        let transport = self.transport
        let parallelism = self.parallelism
        let gathered: ([String: HostFacts], [(String, String)]) =
            (try? await SessionRegistry.withSessions { sessions in
                // Each host's facts as soon as it is connected, not after every host is.
                let connected = await Connector(transport: transport, events: events, redactor: redactor,
                                                parallelism: parallelism, sessions: sessions).connect(endpoints) { r in
                    do { return Swift.Result<HostFacts, Error>.success(
                        try await Refresh.facts(of: r, ec2: ec2.contains(r.name), events: events)) }
                    catch { return .failure(error) }
                }
                var facts: [String: HostFacts] = [:]
                var failures: [(String, String)] = []
                for ep in endpoints {
                    switch connected[ep.name] {
                    case .success(let r)?:
                        switch r.then {
                        case .success(let f): facts[ep.name] = f
                        case .failure(let e): failures.append((ep.name, ErrorText.describe(e, about: ep.name)))
                        }
                    case .failure(let e)?:
                        if case .unreachable(_, let reason) = e { failures.append((ep.name, reason)) } else {
                            failures.append((ep.name, ErrorText.describe(e, about: ep.name)))
                        }
                    case nil: break
                    }
                }
                return (facts, failures)
            }) ?? ([:], [])
        var (facts, failures) = gathered
        failures.sort { $0.0 < $1.0 }
        let (records, drift) = Refresh.records(plan: plan.resolvingPrivateAddresses(state: state, facts: facts),
                                               state: state, facts: facts, removals: [])
        var next = state
        next.hosts = records
        return Result(state: next, drift: drift, failures: failures.map { (host: $0.0, reason: $0.1) },
                      refreshed: hosts.map(\.name).filter { facts[$0] != nil })
    }
}

extension ClusterPlan.Host {
    /// What a host record keeps as the node's cluster address: the resolved one, else the SSH address (what
    /// kubeadm is given then); nil when that is a DNS name (preflight refuses such a host).
    var recordedClusterAddress: String? { IPv4Address(clusterAddress) != nil ? clusterAddress : nil }
}
