import Foundation

/// One line of a plan: something to create, update, delete or replace.
public struct Change: Sendable, Hashable, Codable {
    public enum Action: String, Sendable, Hashable, Codable {
        case create, update, delete, replace

        /// Terraform's symbols.
        public var symbol: String {
            switch self {
            case .create: return "+"
            case .update: return "~"
            case .delete: return "-"
            case .replace: return "-/+"
            }
        }
    }

    public enum Subject: String, Sendable, Hashable, Codable {
        case cluster, host, addon, manifest
    }

    public var subject: Subject
    public var action: Action
    /// Cluster name, host name, add-on key or manifest path.
    public var name: String
    /// Host address (or the cluster's API endpoint).
    public var address: String?
    public var role: ClusterPlan.Role?
    /// Kubernetes version (cluster) or chart version (add-on).
    public var version: String?
    /// Steps apply will run for this change, in order.
    public var steps: [String]
    /// Why the change is needed, in words.
    public var reasons: [String]
    /// For updates of values: the paths whose values differ.
    public var changedPaths: [String]
    /// False when `apply` cannot carry this change out yet (a Kubernetes upgrade).
    public var supported: Bool

    public init(subject: Subject, action: Action, name: String, address: String? = nil,
                role: ClusterPlan.Role? = nil, version: String? = nil, steps: [String] = [],
                reasons: [String] = [], changedPaths: [String] = [], supported: Bool = true) {
        self.subject = subject
        self.action = action
        self.name = name
        self.address = address
        self.role = role
        self.version = version
        self.steps = steps
        self.reasons = reasons
        self.changedPaths = changedPaths
        self.supported = supported
    }
}

/// A change the plan asks for that cannot be made to a live cluster.
public struct Blocker: Sendable, Hashable, Codable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

public struct ChangeSummary: Sendable, Hashable, Codable {
    public var add: Int
    public var change: Int
    public var destroy: Int
    public init(add: Int = 0, change: Int = 0, destroy: Int = 0) {
        self.add = add
        self.change = change
        self.destroy = destroy
    }
}

/// What it takes to turn the recorded state into the plan. Deterministic: the same inputs give the same
/// changes in the same order (cluster, hosts in plan order then removed hosts by name, add-ons in their
/// fixed order, manifests in plan order then removed ones by path).
public struct ChangeSet: Sendable, Hashable, Codable {
    public var cluster: String
    public var changes: [Change]
    public var blocking: [Blocker]
    /// A Kubernetes upgrade, in the order apply carries it out (absent when there is none).
    public var upgrade: UpgradePlan?

    public init(cluster: String, changes: [Change] = [], blocking: [Blocker] = []) {
        self.cluster = cluster
        self.changes = changes
        self.blocking = blocking
    }

    public var summary: ChangeSummary {
        var s = ChangeSummary()
        for c in changes {
            switch c.action {
            case .create: s.add += 1
            case .update: s.change += 1
            case .delete: s.destroy += 1
            case .replace: s.add += 1; s.destroy += 1
            }
        }
        return s
    }

    /// Nothing to do and nothing refused.
    public var isEmpty: Bool { changes.isEmpty && blocking.isEmpty }

    public func changes(of subject: Change.Subject) -> [Change] { changes.filter { $0.subject == subject } }

    /// Computes the changes. `objects` are the Kubernetes objects bootstrap applies for the plan
    /// (`Manifests.desired`: generated ones and the manifest files'); the engine records the same hashes.
    /// `pending`: each plan host's pending steps (`Planner.pendingSteps`) when the caller has them already.
    public static func diff(plan: ClusterPlan, state: ClusterState?, objects: [KubeObject] = [],
                            pending: [String: [PlannedStep]]? = nil) -> ChangeSet {
        var set = ChangeSet(cluster: plan.name)
        set.upgrade = Upgrade.plan(plan: plan, state: state)
        set.diffCluster(plan, state)
        let pending = pending ?? Planner.pendingSteps(plan: plan, state: state)
        set.diffHosts(plan, state, pending: pending)
        let rolled = Upgrade.containerdRoll(plan: plan, state: state, pending: pending)
        for (i, group) in rolled.enumerated() {
            for name in group {
                guard let c = set.changes.firstIndex(where: { $0.subject == .host && $0.name == name }) else { continue }
                set.changes[c].reasons.append("containerd \(plan.spec.containerRuntime.containerdVersion ?? "from the OS") on a node: drain, upgrade, restart, uncordon (group \(i + 1) of \(rolled.count))")
            }
        }
        set.blocking = Blockers.find(plan: plan, state: state)
        set.diffReleases(plan, state)
        set.diffObjects(objects, state)
        return set
    }

    mutating func diffCluster(_ plan: ClusterPlan, _ state: ClusterState?) {
        let pending = ClusterStepCatalogue.pending(in: plan, state: state).map(\.name.rawValue)
        let k = plan.spec.kubernetes
        guard let state, state.cluster.initializedOn != nil else {
            changes.append(Change(subject: .cluster, action: .create, name: plan.name, address: plan.apiEndpoint,
                                  version: k.version, steps: pending))
            return
        }
        let c = state.cluster
        var reasons: [String] = []
        var steps = pending
        if let up = upgrade {
            reasons.append("upgrade \(up.from) → \(up.to)" + (up.snapshotOn.map { ", etcd snapshot on \($0) first" } ?? "")
                           + ", then \(up.hosts.count) node\(up.hosts.count == 1 ? "" : "s") in order")
            steps.insert("upgrade", at: 0)
        } else if let old = c.kubernetesVersion, old != k.version {
            // Refused (the blockers say why) or half-way to another version.
            reasons.append("Kubernetes \(old) → \(k.version)")
        }
        let anchor = plan.anchorControlPlane(state: state)?.name
        for s in pending {
            if s == ClusterStepName.helm.rawValue, let from = c.initializedOn, let to = anchor, from != to {
                reasons.append("helm: \(from), where it was installed, leaves; installed on \(to)")
            } else {
                reasons.append(c.steps[s] == nil ? "\(s) not done yet" : "\(s) inputs changed")
            }
        }
        if !reasons.isEmpty {
            changes.append(Change(subject: .cluster, action: .update, name: plan.name, address: plan.apiEndpoint,
                                  version: k.version, steps: steps, reasons: reasons))
        }
    }

    mutating func diffHosts(_ plan: ClusterPlan, _ state: ClusterState?, pending allPending: [String: [PlannedStep]]) {
        let recorded = state?.hosts ?? [:]
        for host in plan.spec.hosts {
            let port = plan.ssh(for: host).port
            guard let rec = recorded[host.name] else {
                let steps = (allPending[host.name] ?? []).map(\.name.rawValue)
                changes.append(Change(subject: .host, action: .create, name: host.name, address: host.address,
                                      role: host.role, steps: steps))
                continue
            }
            var forcing: [String] = []
            if rec.address != host.address {
                forcing.append("address changed \(rec.address) → \(host.address) forces replacement")
            }
            if Planner.privateAddressChanged(host, rec), let have = rec.privateAddress, let want = host.privateAddress {
                forcing.append("privateAddress changed \(have) → \(want) forces replacement")
            }
            if rec.role != host.role {
                forcing.append("role changed \(rec.role.rawValue) → \(host.role.rawValue) forces replacement")
            }
            if !forcing.isEmpty {
                let steps = (allPending[host.name] ?? []).map(\.name.rawValue)
                changes.append(Change(subject: .host, action: .replace, name: host.name, address: host.address,
                                      role: host.role, steps: steps, reasons: forcing))
                continue
            }
            let pending = allPending[host.name] ?? []
            var reasons: [String] = []
            var paths: [String] = []
            if rec.port != port { reasons.append("SSH port changed \(rec.port) → \(port)") }
            if rec.labels != host.labels {
                reasons.append("labels changed: " + ChangeSet.describeLabels(from: rec.labels, to: host.labels))
                paths.append("labels")
            }
            if rec.taints != host.taints {
                let old = rec.taints.map(\.kubectlForm).joined(separator: ", ")
                let new = host.taints.map(\.kubectlForm).joined(separator: ", ")
                reasons.append("taints changed: [\(old)] → [\(new)]")
                paths.append("taints")
            }
            let explained = !paths.isEmpty
            let upgrading = upgrade?.hosts.first { $0.name == host.name }
            if let u = upgrading, let up = upgrade {
                reasons.append("upgrade \(u.from) → \(up.to): \(u.summary)")
            }
            for s in pending where !(explained && s.name == .nodeConfig) {
                reasons.append(rec.steps[s.name.rawValue] == nil ? "\(s.name.rawValue) not done yet"
                                                                : "\(s.name.rawValue) inputs changed")
            }
            var steps = pending.map(\.name)
            // Recorded labels/taints differ from the plan: node-config runs even if its hash says done.
            if explained && !steps.contains(.nodeConfig) { steps.append(.nodeConfig) }
            if !reasons.isEmpty {
                changes.append(Change(subject: .host, action: .update, name: host.name, address: host.address,
                                      role: host.role, version: upgrading.map { _ in plan.spec.kubernetes.version },
                                      steps: (upgrading != nil ? ["upgrade"] : []) + steps.sorted().map(\.rawValue),
                                      reasons: reasons, changedPaths: paths))
            }
        }
        let planned = Set(plan.spec.hosts.map(\.name))
        for (name, rec) in recorded.sorted(by: { $0.key < $1.key }) where !planned.contains(name) {
            changes.append(Change(subject: .host, action: .delete, name: name, address: rec.address, role: rec.role,
                                  reasons: ["not in the plan any more"]))
        }
    }

    static func describeLabels(from old: [String: String], to new: [String: String]) -> String {
        var parts: [String] = []
        for k in Set(old.keys).union(new.keys).sorted() {
            switch (old[k], new[k]) {
            case (nil, let n?): parts.append("+\(k)=\(n)")
            case (let o?, nil): parts.append("-\(k)=\(o)")
            case (let o?, let n?) where o != n: parts.append("\(k): \(o) → \(n)")
            default: break
            }
        }
        return parts.joined(separator: ", ")
    }

    mutating func diffReleases(_ plan: ClusterPlan, _ state: ClusterState?) {
        let recorded = state?.addons ?? [:]
        let desired = Releases.desired(for: plan)
        for r in desired {
            guard let rec = recorded[r.key] else {
                changes.append(Change(subject: .addon, action: .create, name: r.key, version: r.chart.version,
                                      steps: ["release"], reasons: ["\(r.chart.chart) \(r.chart.version) into \(r.namespace)"]))
                continue
            }
            guard rec.valuesHash != r.valuesHash else { continue }
            var reasons: [String] = []
            if rec.version != r.chart.version { reasons.append("chart version \(rec.version) → \(r.chart.version)") }
            if rec.namespace != r.namespace { reasons.append("namespace \(rec.namespace) → \(r.namespace)") }
            let paths = ChangeSet.changedValuePaths(r.values, rec.values, prefix: "values")
            if !paths.isEmpty { reasons.append("values changed") }
            if reasons.isEmpty { reasons.append("release inputs changed") }
            changes.append(Change(subject: .addon, action: .update, name: r.key, version: r.chart.version,
                                  steps: ["release"], reasons: reasons, changedPaths: paths))
        }
        let wanted = Set(desired.map(\.key))
        for (key, rec) in recorded.sorted(by: { $0.key < $1.key }) where !wanted.contains(key) {
            let why = plan.spec.addons.all.contains { $0.name == rec.addon } ? "disabled in the plan" : "not in the plan any more"
            changes.append(Change(subject: .addon, action: .delete, name: key, version: rec.version,
                                  steps: ["uninstall"], reasons: [why]))
        }
    }

    /// Leaf paths whose values differ between `desired` and `actual` (added and removed ones included);
    /// lists count as leaves.
    public static func changedValuePaths(_ desired: JSONValue?, _ actual: JSONValue?, prefix: String) -> [String] {
        switch (desired, actual) {
        case (.object(let d)?, .object(let a)?):
            return Set(d.keys).union(a.keys).sorted().flatMap { k in
                changedValuePaths(d[k], a[k], prefix: "\(prefix).\(k)")
            }
        default:
            return desired == actual ? [] : [prefix]
        }
    }

    mutating func diffObjects(_ objects: [KubeObject], _ state: ClusterState?) {
        let recorded = state?.manifests ?? [:]
        var seen: Set<String> = []
        for o in objects where seen.insert(o.key).inserted {
            guard let rec = recorded[o.key] else {
                changes.append(Change(subject: .manifest, action: .create, name: o.key, steps: ["manifests"],
                                      reasons: ["from \(o.source)"]))
                continue
            }
            if rec.hash != o.hash {
                changes.append(Change(subject: .manifest, action: .update, name: o.key, steps: ["manifests"],
                                      reasons: ["changed in \(o.source)"]))
            }
        }
        for (key, rec) in recorded.sorted(by: { $0.key < $1.key }) where !seen.contains(key) {
            changes.append(Change(subject: .manifest, action: .delete, name: key, steps: ["prune"],
                                  reasons: ["no longer in \(rec.file)"]))
        }
    }
}
