import Foundation

/// kubeadm's rules for changing the Kubernetes version of a cluster, as blockers: one minor at a time, patch
/// upgrades within a minor, no downgrade, and releases past their end of life only as a source.
public enum UpgradeRules {
    /// What refuses going from `recorded` (the version the state records for a live cluster; nil for a new
    /// cluster) to `target` (the plan's), each naming `spec.kubernetes.version`.
    public static func problems(target: String, recorded: String?) -> [Blocker] {
        let path = "spec.kubernetes.version"
        let targetMinor = minor(of: target)
        guard let recorded else {
            if let m = targetMinor, KubernetesReleases.info(m)?.upgradeSourceOnly == true {
                return [Blocker(path: path, reason: "Kubernetes \(m) is past its end of life: a new cluster cannot be created on it (it is accepted only as the recorded version of an existing cluster, to upgrade from); choose a maintained release: \(maintainedText)")]
            }
            return []
        }
        switch KubernetesReleases.upgradeStep(from: recorded, to: target) {
        case .downgrade?:
            return [Blocker(path: path, reason: "Kubernetes \(recorded) → \(target) is a downgrade: kubeadm cannot downgrade a cluster (its control plane and etcd data are already at \(recorded)); keep version \(recorded) in the plan, or restore a backup taken on \(target)")]
        case .skipsMinor(let through)?:
            return [Blocker(path: path, reason: "Kubernetes \(recorded) → \(target) skips a minor release: kubeadm upgrades one minor at a time; apply \(through) first, then \(target)")]
        case .unchanged?, .patch?, .minor?, nil:
            return []
        }
    }

    /// `1.34.x, 1.35.x, 1.36.x (newest known: 1.34.7, 1.35.5, 1.36.1)`: any patch the repository has.
    static var maintainedText: String {
        let minors = KubernetesReleases.maintainedMinors.compactMap { KubernetesReleases.info($0) }
        return minors.map { "\($0.minor).x" }.joined(separator: ", ")
            + " (newest known: " + minors.map { "\($0.minor).\($0.latestPatch)" }.joined(separator: ", ") + ")"
    }

    /// `1.35` of `1.35.5` (a leading `v` allowed).
    static func minor(of version: String) -> String? {
        guard let t = KubernetesReleases.triple(version) else { return nil }
        return "\(t[0]).\(t[1])"
    }
}

/// A Kubernetes upgrade still to do: what `plan` shows and `apply` runs, in order. Made from the plan and the
/// state alone (`Upgrade.plan`): which hosts still run the old version is what the state records for each.
public struct UpgradePlan: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// The first control plane: `kubeadm upgrade apply`.
        case apply
        /// Another control plane: `kubeadm upgrade node`, one at a time.
        case controlPlane = "control-plane"
        /// A worker: drain, `kubeadm upgrade node`, kubelet, uncordon; in batches.
        case worker
    }

    public struct Host: Sendable, Hashable, Codable {
        public var name: String
        public var kind: Kind
        /// The version the state records for the host.
        public var from: String
        /// Workers: their batch (1-based) and the number of batches.
        public var batch: Int?
        public var batches: Int?

        /// What `plan` prints after the host's name.
        public var summary: String {
            switch kind {
            case .apply: return "kubeadm upgrade apply"
            case .controlPlane: return "kubeadm upgrade node"
            case .worker: return "drain, upgrade, uncordon (batch \(batch ?? 1) of \(batches ?? 1))"
            }
        }
    }

    /// The version the state records for the cluster, and the plan's.
    public var from: String
    public var to: String
    /// The host the etcd snapshot is taken on (the first control plane), when it is still to be taken.
    public var snapshotOn: String?
    /// The hosts still to upgrade, in order.
    public var hosts: [Host]

    /// One line per change, in order: `cluster: upgrade 1.35.5 → 1.36.1`, `cp-1: kubeadm upgrade apply`, …
    public var lines: [String] {
        var out = ["cluster: upgrade \(from) → \(to)"
            + (snapshotOn.map { " (etcd snapshot on \($0) first)" } ?? "")]
        for h in hosts {
            out.append("\(h.name): \(h.summary)" + (h.from != from ? " (at \(h.from))" : ""))
        }
        return out
    }
}

public enum Upgrade {
    /// The upgrade the plan asks of the state, or nil when there is none (a new cluster, the same version, or
    /// a change `UpgradeRules` refuses).
    public static func plan(plan: ClusterPlan, state: ClusterState?) -> UpgradePlan? {
        guard let state, state.cluster.initializedOn != nil, let from = state.cluster.kubernetesVersion
        else { return nil }
        // `kubeadm upgrade apply` runs on the control plane that anchors the cluster (the first that stays).
        let initHost = plan.anchorControlPlane(state: state)?.name
        let to = plan.spec.kubernetes.version
        guard from != to, UpgradeRules.problems(target: to, recorded: from).isEmpty,
              KubernetesReleases.triple(to) != nil
        else { return nil }
        let target = packagesHash(plan, version: to)
        let removed = Set(Planner.removals(plan: plan, state: state))
        func pending(_ h: ClusterPlan.Host) -> Bool {
            guard !removed.contains(h.name), let rec = state.hosts[h.name], isNode(rec) else { return false }
            return rec.steps[StepName.kubernetesPackages.rawValue]?.inputHash != target
        }
        let record = state.cluster.upgrade.flatMap { $0.to == to ? $0 : nil }
        var hosts: [UpgradePlan.Host] = []
        if let first = plan.spec.hosts.first(where: { $0.name == initHost }), pending(first) {
            hosts.append(.init(name: first.name, kind: .apply, from: version(of: first.name, plan: plan, state: state)))
        }
        for h in plan.controlPlanes where h.name != initHost && pending(h) {
            hosts.append(.init(name: h.name, kind: .controlPlane, from: version(of: h.name, plan: plan, state: state)))
        }
        let workers = plan.workers.filter(pending)
        let size = plan.spec.upgrade.batchSize(workers: plan.workers.count) ?? 1
        let batches = (workers.count + size - 1) / max(size, 1)
        for (i, h) in workers.enumerated() {
            hosts.append(.init(name: h.name, kind: .worker, from: version(of: h.name, plan: plan, state: state),
                               batch: i / size + 1, batches: batches))
        }
        let snapshotOn = record?.snapshot == nil ? initHost : nil
        return UpgradePlan(from: from, to: to, snapshotOn: snapshotOn, hosts: hosts)
    }

    /// A changed `spec.containerRuntime.containerd.version` on nodes of the cluster: in the order they are
    /// taken out of service one group at a time (drained, containerd upgraded and restarted, uncordoned): each
    /// control plane alone (the first one first), then the workers in batches of `spec.upgrade.maxUnavailable`.
    public static func containerdRoll(plan: ClusterPlan, state: ClusterState?,
                                      pending: [String: [PlannedStep]]) -> [[String]] {
        guard let state, state.cluster.initializedOn != nil else { return [] }
        let removed = Set(Planner.removals(plan: plan, state: state))
        func rolls(_ h: ClusterPlan.Host) -> Bool {
            guard !removed.contains(h.name), let rec = state.hosts[h.name], isNode(rec),
                  rec.steps[StepName.containerd.rawValue] != nil else { return false }
            return pending[h.name]?.contains { $0.name == .containerd } ?? false
        }
        let initHost = plan.anchorControlPlane(state: state)?.name
        var groups: [[String]] = plan.controlPlanes.filter(rolls)
            .sorted { ($0.name == initHost ? 0 : 1) < ($1.name == initHost ? 0 : 1) }.map { [$0.name] }
        let workers = plan.workers.filter(rolls).map(\.name)
        let size = max(plan.spec.upgrade.batchSize(workers: plan.workers.count) ?? 1, 1)
        for i in stride(from: 0, to: workers.count, by: size) {
            groups.append(Array(workers[i..<min(i + size, workers.count)]))
        }
        return groups
    }

    /// The host has joined the cluster (init or a join finished).
    public static func isNode(_ rec: HostRecord) -> Bool {
        [StepName.initControlPlane, .joinControlPlane, .joinWorker].contains { rec.steps[$0.rawValue] != nil }
    }

    /// The input hash of the `kubernetes-packages` step at `version`.
    static func packagesHash(_ plan: ClusterPlan, version: String) -> String {
        stepHash(plan, version: version, step: .kubernetesPackages)
    }

    /// The input hash `step` (the repository or the packages) has under `plan` with another Kubernetes version.
    public static func stepHash(_ plan: ClusterPlan, version: String, step: StepName) -> String {
        var p = plan
        p.spec.kubernetes.version = version
        guard let host = plan.spec.hosts.first,
              let s = StepCatalogue.steps(for: host, in: p).first(where: { $0.name == step })
        else { return "" }
        return s.inputHash
    }

    /// The Kubernetes version the state records for a host: the cluster's or the plan's, by the hash of its
    /// packages step; else what its facts last showed; else the cluster's.
    public static func version(of host: String, plan: ClusterPlan, state: ClusterState) -> String {
        let cluster = state.cluster.kubernetesVersion ?? plan.spec.kubernetes.version
        guard let rec = state.hosts[host] else { return cluster }
        let hash = rec.steps[StepName.kubernetesPackages.rawValue]?.inputHash
        for v in [cluster, plan.spec.kubernetes.version] where hash == packagesHash(plan, version: v) { return v }
        if let pkg = rec.facts?.packages["kubelet"], let v = pkg.split(separator: "-").first {
            return String(v)
        }
        return cluster
    }

    /// Everything `plan` asks of an upgrade is done on `state`: no host left. Used to move the recorded
    /// cluster version once the last host finished.
    public static func isComplete(plan: ClusterPlan, state: ClusterState) -> Bool {
        guard let u = self.plan(plan: plan, state: state) else { return true }
        return u.hosts.isEmpty
    }

    /// Blockers specific to upgrades: an unfinished upgrade to another version, hosts removed meanwhile.
    public static func blockers(plan: ClusterPlan, state: ClusterState) -> [Blocker] {
        var out: [Blocker] = []
        let to = plan.spec.kubernetes.version
        if let u = state.cluster.upgrade, u.finishedAt == nil, u.to != to {
            let upgraded = packagesHash(plan, version: u.to)
            let done = state.hosts.filter { $0.value.steps[StepName.kubernetesPackages.rawValue]?.inputHash == upgraded }
                .keys.sorted()
            let which = done.isEmpty ? "the control plane runs \(u.to) already"
                : "\(done.joined(separator: ", ")) run\(done.count == 1 ? "s" : "") \(u.to) already"
            // Nothing of the cluster changed before `kubeadm upgrade apply`: another target is fine then.
            if u.applied || !done.isEmpty { out.append(Blocker(path: "spec.kubernetes.version",
                               reason: "an upgrade \(u.from) → \(u.to) is half-way (\(which)); finish it first: set version \(u.to) and apply")) }
        }
        if let up = self.plan(plan: plan, state: state), !up.hosts.isEmpty,
           !Planner.removals(plan: plan, state: state).isEmpty
        {
            out.append(Blocker(path: "spec.hosts",
                               reason: "hosts are removed or replaced while Kubernetes is upgraded \(up.from) → \(up.to); do one, apply, then the other"))
        }
        return out
    }
}
