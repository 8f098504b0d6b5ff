import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// The plan is the contract: what `plan` shows and saves is what `apply` runs, and nothing else. In the
/// serialized `ApplyEngineTests` suite: the fakes share one `FakeCluster`.
extension ApplyEngineTests {

    /// The steps a plan's actions announce when they start (`HOST/STEP`, cluster-wide work on `cp`).
    static func announced(_ plan: ApplyPlan, controlPlane cp: String) -> [String] {
        plan.actions.map { a -> String in
            switch a.id {
            case .hostStep(let h, _), .removal(let h): return "\(h)/\(a.id.stepLabel)"
            default: return "\(cp)/\(a.id.stepLabel)"
            }
        }.sorted()
    }

    @Test func aSavedPlanRunsExactlyItsActions() async throws {
        let small = ApplyEngineTests.plan(workers: 2)
        let rig = Rig(plan: ApplyEngineTests.plan(workers: 3))
        let (_, s1) = try await rig.apply(small, state: ClusterState(name: "lab", toolVersion: "t"))
        // worker-2 leaves, worker-3 comes, worker-1 gets a new label.
        var next = ApplyEngineTests.plan(workers: 3)
        next.spec.hosts.removeAll { $0.name == "worker-2" }
        next.spec.hosts[1].labels["zone"] = "a"
        let saved = SavedPlan(plan: next, state: s1, applyPlan: ApplyPlan.make(plan: next, state: s1))
        let decoded = try SavedPlan.decode(saved.encoded())
        #expect(decoded.actions == saved.actions)
        #expect(decoded.applyPlan.removals == ["worker-2"])
        #expect(decoded.applyPlan.steps(of: "worker-1") == [.nodeConfig])

        let approved = Locked<ApplyPlan?>(nil)
        let skip = rig.log.all.count
        let (report, s2) = try await rig.apply(decoded.plan, state: s1) { approved.set($0.plan) }
        #expect(report.succeeded, "\(report.failures)")
        // The engine ran the plan it was shown, which is the saved one, and every step it started was in it.
        #expect(approved.get()?.actions == decoded.actions)
        let started = rig.log.all.dropFirst(skip).compactMap { e -> String? in
            if case .stepStarted(let h, let s) = e { return "\(h)/\(s)" }
            return nil
        }.sorted()
        #expect(started == Self.announced(decoded.applyPlan, controlPlane: "cp-1"))
        #expect(s2.hosts["worker-2"] == nil && s2.hosts["worker-3"]?.steps["join-worker"] != nil)
        #expect(s2.hosts["worker-1"]?.labels["zone"] == "a")
    }

    /// A host set up by a version without the images step and with containerd installed before the repository:
    /// its recorded hashes (the inputs as that version wrote them) are still the planned ones, and the images
    /// step is not wanted where init or join happened, so nothing runs. A host that has not joined yet pulls them.
    @Test func hostsMadeInTheFormerOrderHaveNothingToRedo() {
        let plan = ApplyEngineTests.plan(workers: 1)
        let at = Date(timeIntervalSince1970: 1_700_000_000)
        let former: [(String, String)] = [
            ("prepare", Hashing.inputs([("step", "prepare/1")])),
            ("containerd", Hashing.inputs([("step", "containerd/1"), ("version", "os")])),
            ("kubernetes-repo", Hashing.inputs([("step", "kubernetes-repo/1"), ("minor", "1.34")])),
            ("kubernetes-packages", Hashing.inputs([("step", "kubernetes-packages/1"), ("version", "1.34.1")])),
        ]
        let worker = plan.spec.hosts[1]
        let initHost = plan.firstControlPlane?.name
        var record = HostRecord(address: worker.address, port: 22, role: .worker, labels: worker.labels)
        for (name, hash) in former { record.steps[name] = StepRecord(inputHash: hash, finishedAt: at) }
        #expect(StepCatalogue.pending(for: worker, in: plan, record: record, initHost: initHost).map(\.name) == [.images, .joinWorker, .nodeConfig])
        for step in StepCatalogue.steps(for: worker, in: plan) where step.name == .joinWorker || step.name == .nodeConfig {
            record.steps[step.name.rawValue] = StepRecord(inputHash: step.inputHash, finishedAt: at)
        }
        #expect(StepCatalogue.pending(for: worker, in: plan, record: record, initHost: initHost).isEmpty)
    }

    @Test func hostsNamedClusterOrReleaseAreJustHosts() async throws {
        var plan = ApplyEngineTests.plan(workers: 1)
        plan.spec.hosts[0].name = "cluster"
        plan.spec.hosts[1].name = "release"
        let applyPlan = ApplyPlan.make(plan: plan, state: nil)
        let ids = applyPlan.actions.map(\.id)
        #expect(Set(ids).count == ids.count)
        #expect(ids.contains(.hostStep(host: "cluster", step: .initControlPlane)))
        #expect(ids.contains(.clusterStep(.helm)) && ids.contains(.release(key: "cni/flannel")))
        #expect(ids.filter { $0.host == "cluster" }.count == StepCatalogue.steps(for: plan.spec.hosts[0], in: plan).count)
        #expect(ids.filter { $0.host == "release" }.count == StepCatalogue.steps(for: plan.spec.hosts[1], in: plan).count)

        let rig = Rig(plan: plan)
        let (report, _) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(report.succeeded, "\(report.failures)")
        let rows = Dictionary(uniqueKeysWithValues: report.hosts.map { ($0.host, $0) })
        // Each host's row counts its own steps only; cluster-wide work has its row.
        #expect(rows["cluster"]?.stepsPlanned == 7 && rows["cluster"]?.stepsDone == 7, "\(report.hosts)")
        #expect(rows["release"]?.stepsPlanned == 7 && rows["release"]?.stepsDone == 7, "\(report.hosts)")
        #expect(rows["(cluster)"]?.stepsDone == 3, "\(report.hosts)")  // helm, kubeconfig, the CNI release
    }

    @Test func stepDependenciesComeFromTheCatalogue() {
        let plan = ApplyEngineTests.plan(workers: 1, controlPlanes: 3)
        let actions = ApplyPlan.make(plan: plan, state: nil).actions
        func after(_ id: ActionID) -> [ActionID] { actions.first { $0.id == id }?.after ?? [] }
        let initID = ActionID.hostStep(host: "cp-1", step: .initControlPlane)
        #expect(after(.hostStep(host: "cp-2", step: .joinControlPlane))
                == [.hostStep(host: "cp-2", step: .images), initID])
        // One control plane at a time.
        #expect(after(.hostStep(host: "cp-3", step: .joinControlPlane)).contains(.hostStep(host: "cp-2", step: .joinControlPlane)))
        #expect(after(.hostStep(host: "worker-1", step: .joinWorker)).contains(initID))
        #expect(after(.hostStep(host: "cp-1", step: .initControlPlane)) == [.hostStep(host: "cp-1", step: .images)])
        // A worker pulls its images while init runs: they wait for its own containerd only.
        #expect(after(.hostStep(host: "worker-1", step: .images)) == [.hostStep(host: "worker-1", step: .containerd)])
        #expect(after(.hostStep(host: "worker-1", step: .joinWorker)) == [.hostStep(host: "worker-1", step: .images), initID])
        // The repository first, then one package transaction, then containerd is configured.
        #expect(after(.hostStep(host: "worker-1", step: .kubernetesPackages)) == [.hostStep(host: "worker-1", step: .kubernetesRepo)])
        #expect(after(.hostStep(host: "worker-1", step: .containerd)) == [.hostStep(host: "worker-1", step: .kubernetesPackages)])
        // The add-ons wait for Ready nodes, which wait for the CNI.
        #expect(after(.waitReady).contains(.release(key: "cni/flannel")))
        // Every dependency is an action of the plan.
        let ids = Set(actions.map(\.id))
        #expect(actions.allSatisfy { $0.after.allSatisfy(ids.contains) })
    }
}

extension ApplyEngineTests {
    @Test func aReplacedHostIsResetThenBuiltAgainInOneRun() async throws {
        let plan = Self.plan(workers: 1)
        let rig = Rig(plan: plan)
        let (_, s1) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        var moved = plan
        moved.spec.hosts[1].address = "10.0.1.99"
        let applyPlan = ApplyPlan.make(plan: moved, state: s1)
        #expect(applyPlan.removals == ["worker-1"])
        #expect(applyPlan.steps(of: "worker-1") == StepCatalogue.steps(for: moved.spec.hosts[1], in: moved).map(\.name))
        let skip = rig.log.all.count
        let (report, s2) = try await rig.apply(moved, state: s1)
        #expect(report.succeeded, "\(report.failures)")
        #expect(rig.hosts["worker-1"]!.commands.contains { $0.contains("kubeadm reset -f") })
        // The new machine went through every step, the join included, after the old one was reset.
        let started = rig.log.all.dropFirst(skip).compactMap { e -> String? in
            if case .stepStarted("worker-1", let s) = e { return s }
            return nil
        }
        #expect(started == ["remove"] + StepCatalogue.steps(for: moved.spec.hosts[1], in: moved).map(\.name.rawValue))
        #expect(s2.hosts["worker-1"]?.address == "10.0.1.99")
        #expect(s2.hosts["worker-1"]?.steps.count == StepCatalogue.steps(for: moved.spec.hosts[1], in: moved).count)
        #expect(ApplyPlan.make(plan: moved, state: s2).actions.map(\.id) == [.waitReady])
    }
}
