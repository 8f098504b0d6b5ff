import Foundation

/// What one action of an apply is, by kind: typed, so no host name can be mistaken for another kind of work
/// (a host named `cluster` or `release` is just a host).
public enum ActionID: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A step of the step catalogue on one plan host.
    case hostStep(host: String, step: StepName)
    /// A cluster-wide step (Helm, the kubeconfig) on the first control plane.
    case clusterStep(ClusterStepName)
    /// A Helm release installed or upgraded (the CNI or an add-on), by its key (`cni/flannel`).
    case release(key: String)
    /// A recorded release the plan no longer has, uninstalled.
    case uninstall(key: String)
    /// The plan's Kubernetes objects applied, and recorded ones it dropped pruned.
    case objects
    /// A host drained, reset and forgotten: gone from the plan, or replaced (new address or role).
    case removal(host: String)
    /// Waiting until every plan node is Ready.
    case waitReady
    /// A control plane's kubeadm certificates renewed and its static pods restarted (`Certificates`).
    case renewCertificates(host: String)
    /// A Kubernetes upgrade begins (recorded in the state) with an etcd snapshot on the first control plane,
    /// and ends once no host is left (the recorded version moves).
    case upgradeCluster
    /// One node upgraded (`UpgradePlan.Kind`): kubeadm, `kubeadm upgrade apply|node`, drain, kubelet, uncordon.
    case upgrade(host: String)

    /// The job's name in messages ("worker-1/join-worker", "release/cni/flannel"); never parsed.
    public var description: String {
        switch self {
        case .hostStep(let host, let step): return "\(host)/\(step.rawValue)"
        case .clusterStep(let s): return "cluster/\(s.rawValue)"
        case .release(let key): return "release/\(key)"
        case .uninstall(let key): return "uninstall/\(key)"
        case .objects: return "cluster/manifests"
        case .removal(let host): return "remove/\(host)"
        case .waitReady: return "cluster/ready"
        case .renewCertificates(let host): return "\(host)/renew-certificates"
        case .upgradeCluster: return "cluster/upgrade"
        case .upgrade(let host): return "\(host)/upgrade"
        }
    }

    /// The plan host whose summary row the action counts in (removals have rows of their own); nil for
    /// cluster-wide work.
    public var host: String? {
        if case .hostStep(let host, _) = self { return host }
        if case .renewCertificates(let host) = self { return host }
        if case .upgrade(let host) = self { return host }
        return nil
    }

    /// The step's name in events: the catalogue's name, or "release KEY", "uninstall KEY", "manifests", …
    public var stepLabel: String {
        switch self {
        case .hostStep(_, let step): return step.rawValue
        case .clusterStep(let s): return s.rawValue
        case .release(let key): return "release \(key)"
        case .uninstall(let key): return "uninstall \(key)"
        case .objects: return "manifests"
        case .removal: return "remove"
        case .waitReady: return "wait-ready"
        case .renewCertificates: return "renew-certificates"
        case .upgradeCluster, .upgrade: return "upgrade"
        }
    }
}

/// One thing apply will do, after the actions it depends on.
public struct PlannedAction: Sendable, Hashable, Codable {
    public var id: ActionID
    /// Actions that must have finished first (all of them in the same plan).
    public var after: [ActionID]
    /// For host and cluster steps: the input hash recorded once the step has run.
    public var inputHash: String?

    public init(id: ActionID, after: [ActionID] = [], inputHash: String? = nil) {
        self.id = id
        self.after = after
        self.inputHash = inputHash
    }
}

/// The contract between `plan` and `apply`: built in one place from the plan, the recorded state (refreshed
/// from the hosts' facts when they are known) and the drift; `plan` renders it, `plan --out` saves it and
/// `apply` executes its actions and nothing else. Deterministic: the same inputs give the same plan.
public struct ApplyPlan: Sendable, Hashable, Codable {
    /// What changes and why, for people (`plan`'s blocks); `changes.blocking` holds every blocker.
    public var changes: ChangeSet
    /// What runs, in order of preference, with dependencies.
    public var actions: [PlannedAction]

    public init(changes: ChangeSet, actions: [PlannedAction]) {
        self.changes = changes
        self.actions = actions
    }

    /// Changes apply refuses to make, each with its reason; when any, no action may run.
    public var blockers: [Blocker] { changes.blocking }

    /// The hosts the plan drains and resets (workers first).
    public var removals: [String] {
        actions.compactMap { if case .removal(let h) = $0.id { return h }; return nil }
    }

    /// The host steps for `host`, in order.
    public func steps(of host: String) -> [StepName] {
        actions.compactMap { if case .hostStep(host, let s) = $0.id { return s }; return nil }
    }

    /// Why apply refuses this plan, in one message (nil when it does not).
    public var refusal: String? {
        blockers.isEmpty ? nil : blockers.map { "\($0.path): \($0.reason)" }.joined(separator: "; ")
    }

    /// Builds the plan. `state` is the recorded state, with the records of the hosts apply refreshed
    /// replaced by what their facts say (the drift's steps forgotten); `drift` explains those steps.
    /// `kubeconfigMissing`: the local admin kubeconfig is gone, so it is fetched again; `kubeconfigStale`: its
    /// client certificate was renewed on the host since (`Certificates.adminRenewed`), likewise.
    public static func make(plan: ClusterPlan, state: ClusterState?, objects: [KubeObject] = [],
                            drift: [HostDrift] = [], kubeconfigMissing: Bool = false,
                            kubeconfigStale: Bool = false) -> ApplyPlan
    {
        let plan = plan.resolvingPrivateAddresses(state: state)
        let pending = Planner.pendingSteps(plan: plan, state: state)
        var changes = ChangeSet.diff(plan: plan, state: state, objects: objects, pending: pending)
        changes.explain(drift)
        let initialized = state?.cluster.initializedOn != nil
        let refetch = (kubeconfigMissing || kubeconfigStale) && initialized
        if kubeconfigMissing && initialized {
            changes.kubeconfigMissing(plan: plan, state: state)
        } else if refetch {
            changes.kubeconfigStale(plan: plan, state: state)
        }
        var actions = Planner.actions(plan: plan, state: state, objects: objects, pending: pending,
                                      refetchKubeconfig: refetch)
        if changes.blocking.isEmpty {
            let renewals = Certificates.renewals(plan: plan, state: state,
                                                 skipping: Certificates.renewedByOtherActions(actions))
            changes.renew(renewals, plan: plan)
            actions = Planner.renewing(renewals, actions: actions, plan: plan, state: state)
        }
        return ApplyPlan(changes: changes, actions: actions)
    }
}

/// The rules that turn (plan, state) into actions: which steps are pending, what they wait for.
public enum Planner {
    /// Hosts to remove: in the state but not in the plan, or whose address or role changed (replaced);
    /// workers first, then control planes, each by name.
    public static func removals(plan: ClusterPlan, state: ClusterState?) -> [String] {
        guard let state else { return [] }
        var out: [String] = []
        let planned = Dictionary(plan.spec.hosts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, rec) in state.hosts {
            if let h = planned[name] {
                if h.address != rec.address || h.role != rec.role || Planner.privateAddressChanged(h, rec) {
                    out.append(name)
                }
            } else {
                out.append(name)
            }
        }
        return workersFirst(out) { state.hosts[$0]?.role ?? .worker }
    }

    /// The plan gives the host another cluster address than the one its node was made with (a replace).
    public static func privateAddressChanged(_ host: ClusterPlan.Host, _ rec: HostRecord) -> Bool {
        guard let want = host.privateAddress, let have = rec.privateAddress else { return false }
        return want != have
    }

    /// `names` with workers before control planes, each group by name: the order hosts leave a cluster in.
    public static func workersFirst(_ names: [String], role: (String) -> ClusterPlan.Role) -> [String] {
        names.sorted { (role($0) == .worker ? 0 : 1, $0) < (role($1) == .worker ? 0 : 1, $1) }
    }

    /// Each plan host's pending steps (`StepCatalogue.pending`): all of them for a new host or one being
    /// replaced (its record goes with the old machine).
    public static func pendingSteps(plan: ClusterPlan, state: ClusterState?) -> [String: [PlannedStep]] {
        let removed = Set(removals(plan: plan, state: state))
        // Nodes being upgraded get their new repository and packages from their upgrade action.
        let upgrading = Set(Upgrade.plan(plan: plan, state: state)?.hosts.map(\.name) ?? [])
        let initHost = plan.initControlPlane(state: state)?.name
        var out: [String: [PlannedStep]] = [:]
        for host in plan.spec.hosts {
            let record = removed.contains(host.name) ? nil : state?.hosts[host.name]
            var steps = StepCatalogue.pending(for: host, in: plan, record: record, initHost: initHost)
            if upgrading.contains(host.name) {
                steps.removeAll { $0.name == .kubernetesRepo || $0.name == .kubernetesPackages }
            }
            out[host.name] = steps
        }
        return out
    }

    /// The steps `host` will run: the catalogue's pending ones (all of them for a new or replaced host), and
    /// node-config when the recorded labels or taints differ from the plan's although its hash says done.
    public static func hostSteps(for host: ClusterPlan.Host, in plan: ClusterPlan, record: HostRecord?,
                                 pending: [PlannedStep]) -> [PlannedStep] {
        var steps = pending
        if let record, record.labels != host.labels || record.taints != host.taints,
           !steps.contains(where: { $0.name == .nodeConfig }),
           let nodeConfig = StepCatalogue.steps(for: host, in: plan).first(where: { $0.name == .nodeConfig })
        {
            steps.append(nodeConfig)
        }
        return steps
    }

    static func actions(plan: ClusterPlan, state: ClusterState?, objects: [KubeObject],
                         pending: [String: [PlannedStep]], refetchKubeconfig: Bool)
        -> [PlannedAction]
    {
        var actions: [PlannedAction] = []
        let removalOrder = removals(plan: plan, state: state)
        let removed = Set(removalOrder)
        for name in removalOrder { actions.append(PlannedAction(id: .removal(host: name))) }

        // A Kubernetes upgrade: the cluster's start (etcd snapshot), then the nodes in their order.
        let upgradeIDs = upgradeActions(plan: plan, state: state, into: &actions)

        // A control plane leaves etcd before another one joins it (etcd's order for replacing a member: with a
        // lost member still counted, a new unstarted one would leave fewer than a majority started).
        let controlPlaneRemovals = removalOrder.filter { state?.hosts[$0]?.role == .controlPlane }.map { ActionID.removal(host: $0) }

        // Host steps, with the dependencies the catalogue gives each step.
        let initID = plan.initControlPlane(state: state).map { ActionID.hostStep(host: $0.name, step: .initControlPlane) }
        var previousCPJoin: ActionID?
        var hostStepIDs: [ActionID] = []
        for host in plan.spec.hosts {
            let record = removed.contains(host.name) ? nil : state?.hosts[host.name]
            var previous: ActionID? = removed.contains(host.name) ? .removal(host: host.name) : nil
            for step in hostSteps(for: host, in: plan, record: record, pending: pending[host.name] ?? []) {
                let id = ActionID.hostStep(host: host.name, step: step.name)
                var after = previous.map { [$0] } ?? []
                for dependency in StepCatalogue.waitsFor(step.name) {
                    switch dependency {
                    case .initOfFirstControlPlane:
                        if let initID, initID != id { after.append(initID) }
                    case .previousControlPlaneJoin:
                        if let p = previousCPJoin { after.append(p) }
                        previousCPJoin = id
                    }
                }
                // New nodes join once the upgrade is done (a kubelet never newer than the API server).
                if step.name == .joinWorker || step.name == .joinControlPlane { after += upgradeIDs }
                if step.name == .joinControlPlane {
                    after += controlPlaneRemovals.filter { !after.contains($0) && $0 != .removal(host: host.name) }
                }
                actions.append(PlannedAction(id: id, after: after, inputHash: step.inputHash))
                hostStepIDs.append(id)
                previous = id
            }
        }

        // containerd changed on nodes of the cluster: one group at a time, after any upgrade (each is drained).
        var previousGroup = upgradeIDs
        for group in Upgrade.containerdRoll(plan: plan, state: state, pending: pending) {
            let ids = group.map { ActionID.hostStep(host: $0, step: .containerd) }
            for i in actions.indices where ids.contains(actions[i].id) { actions[i].after += previousGroup }
            previousGroup = ids
        }

        // Cluster steps, after init.
        var clusterSteps = ClusterStepCatalogue.pending(in: plan, state: state)
        if refetchKubeconfig, !clusterSteps.contains(where: { $0.name == .kubeconfig }),
           let step = ClusterStepCatalogue.steps(in: plan).first(where: { $0.name == .kubeconfig })
        {
            clusterSteps.append(step)
        }
        // Helm follows the anchor: when the control plane it was installed on leaves, it is installed on the new
        // one once the old one is gone (the removal forgets it there).
        let anchorLeaving = state?.cluster.initializedOn.flatMap { removed.contains($0) ? ActionID.removal(host: $0) : nil }
        for step in clusterSteps {
            let leaving = step.name == .helm ? anchorLeaving.map { [$0] } ?? [] : []
            actions.append(PlannedAction(id: .clusterStep(step.name), after: (initID.map { [$0] } ?? []) + leaving,
                                         inputHash: step.inputHash))
        }

        // Releases: the CNI before the wait for Ready nodes, the add-ons after it.
        let base = [initID, clusterSteps.contains { $0.name == .helm } ? ActionID.clusterStep(.helm) : nil].compactMap { $0 }
        let desired = Releases.desired(for: plan)
        var cni: [ActionID] = []
        var addons: [PlannedAction] = []
        for r in desired where state?.addons[r.key]?.valuesHash != r.valuesHash {
            if r.addon == "cni" {
                actions.append(PlannedAction(id: .release(key: r.key), after: base + upgradeIDs))
                cni.append(.release(key: r.key))
            } else {
                addons.append(PlannedAction(id: .release(key: r.key), after: base + [.waitReady]))
            }
        }
        let wanted = Set(desired.map(\.key))
        for key in (state?.addons ?? [:]).keys.sorted() where !wanted.contains(key) {
            addons.append(PlannedAction(id: .uninstall(key: key), after: base + [.waitReady]))
        }
        if plan.firstControlPlane != nil {
            actions.append(PlannedAction(id: .waitReady,
                                         after: hostStepIDs + clusterSteps.map { .clusterStep($0.name) } + cni
                                             + upgradeIDs))
        }
        actions += addons

        // The objects, after the add-ons (their CRDs).
        let recorded = state?.manifests ?? [:]
        let keys = Set(objects.map(\.key))
        let changed = objects.contains { recorded[$0.key]?.hash != $0.hash }
        if changed || recorded.keys.contains(where: { !keys.contains($0) }) {
            actions.append(PlannedAction(id: .objects, after: addons.map(\.id) + [.waitReady]))
        }

        // Dependencies on actions not in the plan (steps already done) are met already.
        let ids = Set(actions.map(\.id))
        return actions.map { a in
            var a = a
            a.after = a.after.filter { ids.contains($0) }
            return a
        }
    }
}

extension Planner {
    /// The upgrade's actions, appended to `actions` in order: `.upgradeCluster` first, then the first control
    /// plane, the other control planes one at a time, the workers batch after batch (each batch waits for the
    /// whole previous one). Returns their IDs.
    static func upgradeActions(plan: ClusterPlan, state: ClusterState?, into actions: inout [PlannedAction])
        -> [ActionID]
    {
        guard let up = Upgrade.plan(plan: plan, state: state) else { return [] }
        var ids: [ActionID] = [.upgradeCluster]
        actions.append(PlannedAction(id: .upgradeCluster))
        var previous: [ActionID] = [.upgradeCluster]
        var batch: [ActionID] = []
        var batchNumber: Int?
        for h in up.hosts {
            let id = ActionID.upgrade(host: h.name)
            if h.kind == .worker, batchNumber != h.batch {
                if !batch.isEmpty { previous = batch }
                batch = []
                batchNumber = h.batch
            }
            actions.append(PlannedAction(id: id, after: previous))
            ids.append(id)
            if h.kind == .worker { batch.append(id) } else { previous = [id] }
        }
        return ids
    }
}

extension ChangeSet {
    /// The local kubeconfig is missing: the cluster's kubeconfig step runs again.
    mutating func kubeconfigMissing(plan: ClusterPlan, state: ClusterState?) {
        let reason = "kubeconfig: the local file is missing; it is fetched again"
        if let i = changes.firstIndex(where: { $0.subject == .cluster }) {
            if !changes[i].steps.contains(ClusterStepName.kubeconfig.rawValue) {
                changes[i].steps.append(ClusterStepName.kubeconfig.rawValue)
                changes[i].reasons.append(reason)
            }
        } else {
            changes.insert(Change(subject: .cluster, action: .update, name: plan.name, address: plan.apiEndpoint,
                                  version: plan.spec.kubernetes.version, steps: [ClusterStepName.kubeconfig.rawValue],
                                  reasons: [reason]), at: 0)
        }
    }
}
