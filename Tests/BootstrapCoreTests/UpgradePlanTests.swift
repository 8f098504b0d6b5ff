import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

/// Kubernetes upgrades as the plan sees them: kubeadm's rules as blockers, the order of the nodes, resuming.
@Suite struct UpgradePlanTests {
    /// 2 control planes and 5 workers on `version`.
    static func cluster(_ version: String, maxUnavailable: String? = nil) throws -> ClusterPlan {
        var hosts = "    - {name: cp-1, address: 10.0.1.10, role: control-plane}\n"
        hosts += "    - {name: cp-2, address: 10.0.1.11, role: control-plane}\n"
        for i in 1...5 { hosts += "    - {name: worker-\(i), address: 10.0.1.\(20 + i), role: worker}\n" }
        let upgrade = maxUnavailable.map { "  upgrade: {maxUnavailable: \"\($0)\", drainTimeout: 120}\n" } ?? ""
        return try plan("""
            apiVersion: bootstrap.k8s.lab/v1alpha1
            kind: Cluster
            metadata: {name: demo}
            spec:
              kubernetes: {version: "\(version)", controlPlaneEndpoint: "10.0.1.10:6443"}
              hosts:
            \(hosts)\(upgrade)
            """)
    }

    static func upgrading(from: String, to: String, maxUnavailable: String? = nil) throws
        -> (ClusterPlan, ClusterState)
    {
        let old = try cluster(from, maxUnavailable: maxUnavailable)
        return (try cluster(to, maxUnavailable: maxUnavailable), appliedState(old))
    }

    @Test func oneMinorAtATimeNamesTheVersionToApplyFirst() throws {
        let (p, s) = try Self.upgrading(from: "1.34.7", to: "1.36.1")
        let plan = ApplyPlan.make(plan: p, state: s)
        #expect(plan.blockers.count == 1)
        let b = try #require(plan.blockers.first)
        #expect(b.path == "spec.kubernetes.version")
        #expect(b.reason.contains("skips a minor release"))
        #expect(b.reason.contains("apply 1.35.5 first, then 1.36.1"))
        #expect(plan.actions.isEmpty == false || plan.refusal != nil)
        #expect(plan.changes.upgrade == nil)
    }

    @Test func aDowngradeIsRefusedWithTheReason() throws {
        let (p, s) = try Self.upgrading(from: "1.35.5", to: "1.35.2")
        let b = ApplyPlan.make(plan: p, state: s).blockers
        #expect(b.count == 1)
        #expect(b.first?.reason.contains("is a downgrade: kubeadm cannot downgrade a cluster") == true)
        let minor = ApplyPlan.make(plan: try Self.cluster("1.34.7"), state: appliedState(try Self.cluster("1.35.0")))
        #expect(minor.blockers.first?.reason.contains("1.35.0 → 1.34.7 is a downgrade") == true)
    }

    @Test func endOfLifeReleasesOnlyAsTheSourceOfAnUpgrade() throws {
        // A new cluster on 1.33 is refused…
        let new = ApplyPlan.make(plan: try Self.cluster("1.33.5"), state: nil)
        #expect(new.blockers.map(\.path) == ["spec.kubernetes.version"])
        #expect(new.blockers.first?.reason.contains("past its end of life") == true)
        // …an existing 1.33 cluster is fine as it is, and may be upgraded to 1.34.
        let old = try Self.cluster("1.33.5")
        #expect(ApplyPlan.make(plan: old, state: appliedState(old)).changes.isEmpty)
        let (p, s) = try Self.upgrading(from: "1.33.5", to: "1.34.7")
        let up = ApplyPlan.make(plan: p, state: s)
        #expect(up.blockers.isEmpty)
        #expect(up.changes.upgrade?.from == "1.33.5")
    }

    @Test func theUpgradeIsOrderedFirstControlPlaneOthersThenWorkerBatches() throws {
        let (p, s) = try Self.upgrading(from: "1.35.5", to: "1.36.1", maxUnavailable: "2")
        let plan = ApplyPlan.make(plan: p, state: s)
        #expect(plan.blockers.isEmpty)
        let up = try #require(plan.changes.upgrade)
        #expect(up.lines == [
            "cluster: upgrade 1.35.5 → 1.36.1 (etcd snapshot on cp-1 first)",
            "cp-1: kubeadm upgrade apply",
            "cp-2: kubeadm upgrade node",
            "worker-1: drain, upgrade, uncordon (batch 1 of 3)",
            "worker-2: drain, upgrade, uncordon (batch 1 of 3)",
            "worker-3: drain, upgrade, uncordon (batch 2 of 3)",
            "worker-4: drain, upgrade, uncordon (batch 2 of 3)",
            "worker-5: drain, upgrade, uncordon (batch 3 of 3)",
        ])
        func after(_ id: ActionID) -> Set<String> {
            Set(plan.actions.first { $0.id == id }?.after.map(\.description) ?? ["missing"])
        }
        #expect(after(.upgradeCluster) == [])
        #expect(after(.upgrade(host: "cp-1")) == ["cluster/upgrade"])
        #expect(after(.upgrade(host: "cp-2")) == ["cp-1/upgrade"])
        #expect(after(.upgrade(host: "worker-1")) == ["cp-2/upgrade"])
        #expect(after(.upgrade(host: "worker-2")) == ["cp-2/upgrade"])
        #expect(after(.upgrade(host: "worker-3")) == ["worker-1/upgrade", "worker-2/upgrade"])
        #expect(after(.upgrade(host: "worker-5")) == ["worker-3/upgrade", "worker-4/upgrade"])
        #expect(after(.waitReady).contains("worker-5/upgrade"))
        // The packages move with the upgrade, not as steps of their own (never all hosts at once).
        #expect(!plan.actions.contains { if case .hostStep = $0.id { return true }; return false })
        // plan shows it per host too.
        let cp1 = plan.changes.changes.first { $0.name == "cp-1" }
        #expect(cp1?.reasons == ["upgrade 1.35.5 → 1.36.1: kubeadm upgrade apply"])
        #expect(cp1?.steps == ["upgrade"])
        let cluster = plan.changes.changes.first { $0.subject == .cluster }
        #expect(cluster?.reasons.first == "upgrade 1.35.5 → 1.36.1, etcd snapshot on cp-1 first, then 7 nodes in order")
    }

    @Test func aPercentageOfTheWorkersPerBatch() throws {
        let (p, s) = try Self.upgrading(from: "1.35.5", to: "1.36.1", maxUnavailable: "40%")
        let workers = ApplyPlan.make(plan: p, state: s).changes.upgrade?.hosts.filter { $0.kind == .worker }
        #expect(workers?.map(\.batch) == [1, 1, 2, 2, 3])
        #expect(ClusterPlan.UpgradeSettings(maxUnavailable: "1%").batchSize(workers: 5) == 1)
        #expect(ClusterPlan.UpgradeSettings(maxUnavailable: "0").batchSize(workers: 5) == nil)
        #expect(ClusterPlan.UpgradeSettings(maxUnavailable: "x%").batchSize(workers: 5) == nil)
    }

    @Test func aPatchUpgradeIsAnUpgradeToo() throws {
        let (p, s) = try Self.upgrading(from: "1.35.2", to: "1.35.5")
        let plan = ApplyPlan.make(plan: p, state: s)
        #expect(plan.blockers.isEmpty)
        #expect(plan.changes.upgrade?.hosts.first?.kind == .apply)
        #expect(plan.changes.upgrade?.hosts.count == 7)
    }

    /// A run stopped half-way: what the state records as done is not shown again.
    @Test func aMixedVersionClusterShowsTheRemainingHostsOnly() throws {
        let (p, start) = try Self.upgrading(from: "1.35.5", to: "1.36.1")
        var s = start
        s.cluster.upgrade = UpgradeRecord(from: "1.35.5", to: "1.36.1", startedAt: Date())
        s.cluster.upgrade?.snapshot = EtcdSnapshotRecord(host: "cp-1", path: "/x.db", createdAt: Date(), size: 1,
                                                        sha256: String(repeating: "a", count: 64))
        s.cluster.upgrade?.applied = true
        for name in ["cp-1", "cp-2", "worker-1"] {
            for step in [StepName.kubernetesRepo, .kubernetesPackages] {
                s.hosts[name]?.steps[step.rawValue] = StepRecord(
                    inputHash: Upgrade.stepHash(p, version: "1.36.1", step: step), finishedAt: Date())
            }
        }
        let plan = ApplyPlan.make(plan: p, state: s)
        let up = try #require(plan.changes.upgrade)
        #expect(up.snapshotOn == nil)
        #expect(up.hosts.map(\.name) == ["worker-2", "worker-3", "worker-4", "worker-5"])
        #expect(up.hosts.map(\.batch) == [1, 2, 3, 4])
        #expect(up.lines.first == "cluster: upgrade 1.35.5 → 1.36.1")
        #expect(Upgrade.version(of: "cp-1", plan: p, state: s) == "1.36.1")
        #expect(Upgrade.version(of: "worker-2", plan: p, state: s) == "1.35.5")
        #expect(!Upgrade.isComplete(plan: p, state: s))
        // Going back to 1.35.5 half-way is refused: the upgraded hosts cannot be downgraded.
        let back = ApplyPlan.make(plan: try Self.cluster("1.35.5"), state: s)
        #expect(back.blockers.first?.reason.contains("half-way (cp-1, cp-2, worker-1 run 1.36.1 already)") == true)
        // Every host done: complete.
        for i in 2...5 {
            for step in [StepName.kubernetesRepo, .kubernetesPackages] {
                s.hosts["worker-\(i)"]?.steps[step.rawValue] = StepRecord(
                    inputHash: Upgrade.stepHash(p, version: "1.36.1", step: step), finishedAt: Date())
            }
        }
        #expect(Upgrade.isComplete(plan: p, state: s))
    }

    @Test func upgradingAndRemovingHostsAtOnceIsRefused() throws {
        let (p, s) = try Self.upgrading(from: "1.35.5", to: "1.36.1")
        var fewer = p
        fewer.spec.hosts.removeLast()
        let b = ApplyPlan.make(plan: fewer, state: s).blockers
        #expect(b.map(\.path) == ["spec.hosts"])
    }

    @Test func newHostsJoinAfterTheUpgrade() throws {
        let (p, s) = try Self.upgrading(from: "1.35.5", to: "1.36.1")
        var more = p
        more.spec.hosts.append(ClusterPlan.Host(name: "worker-6", address: "10.0.1.26", role: .worker))
        let plan = ApplyPlan.make(plan: more, state: s)
        let join = plan.actions.first { $0.id == .hostStep(host: "worker-6", step: .joinWorker) }
        #expect(join?.after.contains(.upgrade(host: "worker-5")) == true)
        #expect(plan.changes.upgrade?.hosts.contains { $0.name == "worker-6" } == false)
    }

    @Test func drainOutputNamesTheBlockingPods() {
        let out = """
            evicting pod shop/web-7d9f
            error when evicting pods/"web-7d9f" -n "shop" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
            error: unable to drain node "worker-1" due to error: [error when evicting pods/"web-7d9f" -n "shop": global timeout reached: 10s, error when evicting pods/"db-0" -n "data": global timeout reached: 10s], continuing command...
            """
        #expect(UpgradeRecipes.blockingPods(out) == ["data/db-0", "shop/web-7d9f"])
        #expect(UpgradeRecipes.blockedByBudget(out))
    }

    @Test func upgradeApplyIsSkippedWhenTheControlPlaneRunsTheTargetAlready() {
        let c = UpgradeRecipes.apply(version: "1.36.1", limits: .init())
        #expect(c.script.contains("kubeadm upgrade apply v1.36.1 -y"))
        #expect(c.script.contains("kube-apiserver:v1.36.1"))
        #expect(c.script.contains(NodeRecipes.alreadyDone))
        #expect(UpgradeRecipes.drain(node: "w 1", timeout: 90).script
            == "kubectl --kubeconfig /etc/kubernetes/admin.conf drain 'w 1' --ignore-daemonsets --delete-emptydir-data --timeout=90s")
    }

    @Test func upgradeSettingsAreValidated() {
        let r = load(basePlanYAML + "\n  upgrade: {maxUnavailable: \"150%\", drainTimeout: 5}\n")
        let paths = r.diagnostics.filter { $0.severity == .error }.map(\.path)
        #expect(paths.contains("spec.upgrade.maxUnavailable"))
        #expect(paths.contains("spec.upgrade.drainTimeout"))
        let ok = load(basePlanYAML + "\n  upgrade: {maxUnavailable: 3}\n")
        #expect(ok.plan?.spec.upgrade.maxUnavailable == "3")
    }

    /// `plan --out`: the upgrade's actions and order survive the saved file.
    @Test func aSavedPlanKeepsTheUpgrade() throws {
        let (p, s) = try Self.upgrading(from: "1.35.5", to: "1.36.1", maxUnavailable: "50%")
        let plan = ApplyPlan.make(plan: p, state: s)
        let saved = SavedPlan(plan: p, state: s, applyPlan: plan)
        let back = try SavedPlan.decode(saved.encoded())
        #expect(back.applyPlan == plan)
        #expect(back.actions.contains { $0.id == .upgrade(host: "worker-3") })
        #expect(back.changes.upgrade?.hosts.map(\.batch) == [nil, nil, 1, 1, 2, 2, 3])
        #expect(String(decoding: saved.encoded(), as: UTF8.self).contains("\"upgradeCluster\""))
    }

    /// A changed containerd version on live nodes: one control plane at a time, then worker batches, each
    /// drained (the step does it), never all at once.
    @Test func aContainerdChangeRollsThroughTheNodes() throws {
        let old = try Self.cluster("1.35.5", maxUnavailable: "3")
        var p = old
        p.spec.containerRuntime.containerdVersion = "1.7.28"
        let plan = ApplyPlan.make(plan: p, state: appliedState(old))
        #expect(plan.blockers.isEmpty)
        #expect(plan.changes.upgrade == nil)
        func after(_ host: String) -> Set<String> {
            Set(plan.actions.first { $0.id == .hostStep(host: host, step: .containerd) }?.after.map(\.description) ?? ["missing"])
        }
        #expect(after("cp-1") == [])
        #expect(after("cp-2") == ["cp-1/containerd"])
        #expect(after("worker-1") == ["cp-2/containerd"])
        #expect(after("worker-3") == ["cp-2/containerd"])
        #expect(after("worker-4") == ["worker-1/containerd", "worker-2/containerd", "worker-3/containerd"])
        let w4 = plan.changes.changes.first { $0.name == "worker-4" }
        #expect(w4?.reasons.last == "containerd 1.7.28 on a node: drain, upgrade, restart, uncordon (group 4 of 4)")
        // A host that never had containerd recorded installs it plainly, in parallel.
        var fresh = appliedState(old)
        fresh.hosts["worker-5"]?.steps["containerd"] = nil
        #expect(Upgrade.containerdRoll(plan: p, state: fresh, pending: Planner.pendingSteps(plan: p, state: fresh))
            .flatMap { $0 }.contains("worker-5") == false)
    }
}
