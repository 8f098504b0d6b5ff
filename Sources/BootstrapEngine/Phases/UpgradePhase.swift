import BootstrapCore
import Foundation

/// Why an upgrade stopped on a node, with what was done to the node and what to do.
public struct UpgradeError: Error, Sendable, HostScopedError {
    public var host: String
    public var message: String
    public var hostName: String? { host }
    public var detail: String { message }
    public var description: String { "\(host): \(message)" }
}

/// The upgrade phase: the official kubeadm procedure, one node at a time (workers in batches), each step
/// recorded in the state's `cluster.upgrade` so that a re-run after a failure, `kill -9` or Ctrl-C resumes
/// where it stopped without a second `kubeadm upgrade apply`.
extension ApplyEngine {
    /// `.upgradeCluster`: records the upgrade, takes the etcd snapshot on the first control plane (once), and
    /// moves the recorded version when no node is left.
    func startUpgrade(cluster: ClusterSession) async throws {
        let cp = try await cluster.controlPlaneRunner()
        let plan = self.plan
        try await stepEvents.run(host: cp.name, step: "upgrade") {
            let state = await runState.state
            guard let up = Upgrade.plan(plan: plan, state: state) else { return false }
            if state.cluster.upgrade?.to != up.to || state.cluster.upgrade?.finishedAt != nil {
                let record = UpgradeRecord(from: up.from, to: up.to, startedAt: Date())
                try await runState.update { $0.cluster.upgrade = record }
            }
            var ran = false
            if up.snapshotOn != nil {
                let snapshot = try await etcdSnapshot(on: cp, before: up.to)
                try await runState.update { $0.cluster.upgrade?.snapshot = snapshot }
                ran = true
            }
            try await finishUpgradeIfDone()
            return ran
        }
    }

    /// An etcd snapshot kept on the control plane, with the same recipes as `bootstrap backup` (etcdctl of the
    /// running etcd's version, `snapshot save`, `etcdutl snapshot status`), then its size and SHA-256.
    func etcdSnapshot(on cp: HostRunner, before version: String) async throws -> EtcdSnapshotRecord {
        let now = Date()
        let etcd = try await cp.run(EtcdRecipes.version).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        try await cp.run(EtcdRecipes.install(version: etcd), timeout: .seconds(660))
        let path = UpgradeRecipes.snapshotPath(to: version, at: now)
        let status = try await cp.run(EtcdRecipes.snapshot(to: path), timeout: .seconds(660)).stdoutText
        guard status.split(separator: "\n").contains(where: { $0.hasPrefix("{") && $0.contains("totalSize") }) else {
            throw EngineError.invalidOutput(host: cp.name, what: "etcdutl snapshot status of \(path)")
        }
        var kv: [String: String] = [:]
        for line in try await cp.run(UpgradeRecipes.snapshotDigest(path)).stdoutText.split(separator: "\n") {
            let p = line.split(separator: "=", maxSplits: 1).map(String.init)
            if p.count == 2 { kv[p[0]] = p[1].trimmingCharacters(in: .whitespaces) }
        }
        guard let size = kv["size"].flatMap(Int.init), let sha = kv["sha256"], sha.count == 64 else {
            throw EngineError.invalidOutput(host: cp.name, what: "the size and SHA-256 of \(path)")
        }
        return EtcdSnapshotRecord(host: cp.name, path: path, createdAt: now, size: size, sha256: sha)
    }

    /// Once no node is left to upgrade: the recorded version is the new one.
    func finishUpgradeIfDone() async throws {
        let plan = self.plan
        let state = await runState.state
        guard state.cluster.kubernetesVersion != plan.spec.kubernetes.version,
              Upgrade.isComplete(plan: plan, state: state) else { return }
        let now = Date()
        try await runState.update {
            $0.cluster.kubernetesVersion = plan.spec.kubernetes.version
            $0.cluster.upgrade?.finishedAt = now
        }
    }

    /// `.upgrade(host:)`: the node's upgrade, resumed from what the state records.
    func upgradeNode(_ ctx: StepContext, cluster: ClusterSession) async throws {
        let name = ctx.host.name
        let plan = self.plan
        try await stepEvents.run(host: name, step: "upgrade") {
            let state = await runState.state
            guard let up = Upgrade.plan(plan: plan, state: state),
                  let me = up.hosts.first(where: { $0.name == name }) else { return false }
            let to = up.to
            let limits = plan.spec.timeouts
            let r = ctx.runner
            let api = try await cluster.controlPlaneRunner()
            let packages = Duration.seconds(RemoteGuard.sessionLimit(limits.packages))

            // 1. The new kubeadm (the repository of its minor first).
            try await r.run(UpgradeRecipes.repository(ctx.os, version: to, limits: limits), timeout: packages)
            try await r.run(UpgradeRecipes.install(ctx.os, ["kubeadm"], version: to, limits: limits), timeout: packages)

            // 2. kubeadm upgrade apply (the first control plane, once) or node.
            let record = state.cluster.upgrade
            if record?.kubeadmDone.contains(name) != true {
                if me.kind == .apply {
                    if record?.applied != true {
                        try await r.run(UpgradeRecipes.apply(version: to, limits: limits),
                                        timeout: .seconds(RemoteGuard.sessionLimit(limits.`init`)))
                    }
                    try await runState.update {
                        $0.cluster.upgrade?.applied = true
                        $0.cluster.upgrade?.kubeadmDone.append(name)
                    }
                } else {
                    try await r.run(UpgradeRecipes.node(limits: limits),
                                    timeout: .seconds(RemoteGuard.sessionLimit(limits.join)))
                    try await runState.update { $0.cluster.upgrade?.kubeadmDone.append(name) }
                }
            }

            // 3. Drain; the new kubelet and kubectl; restart; uncordon; Ready on the new version.
            try await drain(name, api: api)
            do {
                try await r.run(UpgradeRecipes.install(ctx.os, ["kubelet", "kubectl"], version: to, limits: limits),
                                timeout: packages)
                try await r.run(UpgradeRecipes.restartKubelet)
            } catch {
                let uncordoned = (try? await api.probe(UpgradeRecipes.uncordon(node: name)))?.succeeded == true
                throw UpgradeError(host: name, message: "\(ErrorText.describe(error, about: name)); "
                    + (uncordoned ? "\(name) was uncordoned (its kubelet is not upgraded yet); the next apply resumes its upgrade"
                                  : "\(name) is left cordoned (uncordon failed too); the next apply resumes its upgrade and uncordons it"))
            }
            try await api.run(UpgradeRecipes.uncordon(node: name))
            try await waitForNode(name, version: to, api: api)

            // 4. Recorded: the node's repository and packages are the plan's; the cluster's version moves last.
            let repo = Upgrade.stepHash(plan, version: to, step: .kubernetesRepo)
            let pkgs = Upgrade.stepHash(plan, version: to, step: .kubernetesPackages)
            let now = Date()
            try await runState.update {
                $0.hosts[name]?.steps[StepName.kubernetesRepo.rawValue] = StepRecord(inputHash: repo, finishedAt: now)
                $0.hosts[name]?.steps[StepName.kubernetesPackages.rawValue] = StepRecord(inputHash: pkgs, finishedAt: now)
                $0.cluster.upgrade?.kubeadmDone.removeAll { $0 == name }
            }
            try await finishUpgradeIfDone()
            return true
        }
    }

    func drain(_ name: String, api: HostRunner) async throws {
        try await NodeMaintenance.drain(name, api: api, plan: plan)
    }

    func waitForNode(_ name: String, version: String, api: HostRunner) async throws {
        try await NodeMaintenance.waitReady(name, version: version, api: api, plan: plan,
                                            poll: options.readyPollInterval, cancellation: options.cancellation)
    }
}

/// Taking a node out of service and back: drain, and Ready again (upgrades, containerd changes).
enum NodeMaintenance {
    /// `kubectl drain` for the upgrade. A drain that fails (a PodDisruptionBudget that allows no disruption
    /// within `spec.upgrade.drainTimeout`, a bare pod) stops the run: the node is uncordoned, and the error
    /// names the pods that blocked it.
    static func drain(_ name: String, api: HostRunner, plan: ClusterPlan) async throws {
        let seconds = plan.spec.upgrade.drainTimeout
        let result = try await api.probe(UpgradeRecipes.drain(node: name, timeout: seconds),
                                         timeout: .seconds(seconds + 120))
        guard !result.succeeded else { return }
        let text = result.stderrText + "\n" + result.stdoutText
        let uncordoned = (try? await api.probe(UpgradeRecipes.uncordon(node: name)))?.succeeded == true
        let left = uncordoned ? "\(name) was uncordoned and its kubelet not upgraded"
            : "\(name) is left cordoned (uncordon failed too: run `kubectl uncordon \(name)`)"
        let pods = UpgradeRecipes.blockingPods(text)
        if UpgradeRecipes.blockedByBudget(text) {
            let who = pods.isEmpty ? "some pods" : "pods \(pods.joined(separator: ", "))"
            throw UpgradeError(host: name, message: "drain blocked by a PodDisruptionBudget: \(who) could not be evicted within \(seconds)s (spec.upgrade.drainTimeout); \(left). Let their budgets allow a disruption (more replicas, or a looser PodDisruptionBudget) or raise spec.upgrade.drainTimeout, then apply again")
        }
        let last = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.suffix(3).joined(separator: " | ")
        throw UpgradeError(host: name, message: "kubectl drain \(name) failed (exit \(result.exitStatus)): \(last); \(left)")
    }

    /// Waits until `name` is Ready, with a kubelet at `version` when given (`spec.timeouts.waitReady`).
    static func waitReady(_ name: String, version: String?, api: HostRunner, plan: ClusterPlan, poll: Duration,
                          cancellation: CancellationFlag) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(plan.spec.timeouts.waitReady)
        var last = "not seen yet"
        while true {
            let result = try await api.probe(NodeRecipes.nodesJSON, timeout: .seconds(60))
            if result.succeeded, let node = NodeStatus.parse(result.stdout)[name] {
                if node.ready && (version == nil || node.kubelet == "v" + (version ?? "")) { return }
                last = "kubelet \(node.kubelet), \(node.ready ? "Ready" : "not Ready")"
            }
            if clock.now >= deadline || cancellation.isCancelled {
                let what = version.map { "Ready on v\($0)" } ?? "Ready"
                throw UpgradeError(host: name, message: "not \(what) after \(plan.spec.timeouts.waitReady)s (spec.timeouts.waitReady): \(last)")
            }
            try await Task.sleep(for: poll)
        }
    }
}
