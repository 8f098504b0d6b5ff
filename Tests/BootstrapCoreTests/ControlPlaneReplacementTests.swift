import BootstrapCore
import BootstrapTestSupport
import Foundation
import Testing

/// Removing or replacing a control plane, the one that ran `kubeadm init` included (issue 14): `init` belongs to
/// the host that ran it while it stays, every other control plane joins; only an endpoint that is a leaving
/// host's own address, and quorum, refuse it.
@Suite struct ControlPlaneReplacementPlanTests {
    /// Three control planes behind `endpoint`, and a worker; applied.
    static func cluster(endpoint: String = "api.x:6443") throws -> (ClusterPlan, ClusterState) {
        let yaml = """
            apiVersion: bootstrap.k8s.lab/v1alpha1
            kind: Cluster
            metadata:
              name: demo
            spec:
              kubernetes:
                version: "1.34.1"
                controlPlaneEndpoint: "\(endpoint)"
              network:
                cni: flannel
              hosts:
                - { name: cp-1, address: 10.0.1.10, role: control-plane }
                - { name: cp-2, address: 10.0.1.11, role: control-plane }
                - { name: cp-3, address: 10.0.1.12, role: control-plane }
                - { name: worker-1, address: 10.0.1.21, role: worker }
            """
        let p = try plan(yaml)
        return (p, appliedState(p))
    }

    /// cp-1 gone from the plan and cp-4 listed first in its place.
    static func replacingFirst(_ p: ClusterPlan) -> ClusterPlan {
        var q = p
        q.spec.hosts.removeAll { $0.name == "cp-1" }
        q.spec.hosts.insert(ClusterPlan.Host(name: "cp-4", address: "10.0.1.14", role: .controlPlane), at: 0)
        return q
    }

    @Test func replacingTheInitHostByANewHostListedFirstJoinsIt() throws {
        let (p, s) = try Self.cluster()
        let q = Self.replacingFirst(p)
        let built = ApplyPlan.make(plan: q, state: s)
        #expect(built.changes.blocking.isEmpty, "\(built.changes.blocking)")
        #expect(q.initControlPlane(state: s) == nil)
        #expect(q.anchorControlPlane(state: s)?.name == "cp-2")
        // cp-4 joins as a control plane; nobody runs kubeadm init again.
        #expect(built.steps(of: "cp-4").contains(.joinControlPlane))
        #expect(!built.actions.contains { if case .hostStep(_, .initControlPlane) = $0.id { true } else { false } })
        let cp4 = built.changes.changes.first { $0.name == "cp-4" }
        #expect(cp4?.action == .create && cp4?.steps.contains("join-control-plane") == true && cp4?.steps.contains("init") == false,
                "\(String(describing: cp4))")
        #expect(built.changes.changes.first { $0.name == "cp-1" }?.action == .delete)
        #expect(built.removals == ["cp-1"])
        // cp-1 leaves etcd before cp-4 joins it: never a new unstarted member beside a lost one.
        #expect(built.actions.first { $0.id == .hostStep(host: "cp-4", step: .joinControlPlane) }?.after
                    .contains(.removal(host: "cp-1")) == true)
        // Helm lived on cp-1: it is installed again, on the new anchor.
        #expect(built.actions.first { $0.id == .clusterStep(.helm) }?.after == [.removal(host: "cp-1")])
        let cluster = built.changes.changes.first { $0.subject == .cluster }
        #expect(cluster?.steps == ["helm"])
        #expect(cluster?.reasons == ["helm: cp-1, where it was installed, leaves; installed on cp-2"])
    }

    @Test func afterTheReplacementThePlanIsClean() throws {
        let (p, s0) = try Self.cluster()
        let q = Self.replacingFirst(p)
        // What apply leaves: cp-1 forgotten, cp-2 anchors the cluster, Helm installed there, cp-4 joined.
        var s = s0
        s.hosts["cp-1"] = nil
        s.cluster.initializedOn = "cp-2"
        let done = appliedState(q)
        s.hosts["cp-4"] = done.hosts["cp-4"].map { rec in
            var r = rec
            r.steps = Dictionary(uniqueKeysWithValues: StepCatalogue.steps(for: q.spec.hosts[0], in: q, initHost: nil).map {
                ($0.name.rawValue, StepRecord(inputHash: $0.inputHash, finishedAt: Date(timeIntervalSince1970: 1_700_000_000)))
            })
            return r
        }
        #expect(s.hosts["cp-4"]?.steps["join-control-plane"] != nil && s.hosts["cp-4"]?.steps["init"] == nil)
        let built = ApplyPlan.make(plan: q, state: s)
        #expect(built.changes.changes.isEmpty, "\(built.changes.changes)")
        #expect(built.actions.map(\.id) == [.waitReady], "\(built.actions)")
        #expect(q.anchorControlPlane(state: s)?.name == "cp-2")
        #expect(q.initControlPlane(state: s) == nil)
        // A restore runs on the anchor first.
        #expect(RestoreChecks.hosts(plan: q, state: s).controlPlanes.map(\.name) == ["cp-2", "cp-4", "cp-3"])
    }

    @Test func theInitHostKeepsInitWhereverItIsListed() throws {
        let (p, s) = try Self.cluster()
        var q = p
        q.spec.hosts.swapAt(0, 2)     // cp-3 first, cp-1 third
        #expect(q.initControlPlane(state: s)?.name == "cp-1")
        #expect(q.anchorControlPlane(state: s)?.name == "cp-1")
        let built = ApplyPlan.make(plan: q, state: s)
        #expect(built.changes.blocking.isEmpty && built.changes.changes.isEmpty, "\(built.changes)")
        #expect(StepCatalogue.steps(for: q.spec.hosts[0], in: q, initHost: "cp-1").map(\.name).contains(.joinControlPlane))
        // A new cluster: the first control plane listed runs init.
        #expect(q.initControlPlane(state: nil)?.name == "cp-3")
    }

    @Test func theInitHostReplacedUnderItsOwnNameJoins() throws {
        let (p, s) = try Self.cluster()
        var q = p
        q.spec.hosts[0].address = "10.0.1.99"
        let built = ApplyPlan.make(plan: q, state: s)
        #expect(built.changes.blocking.isEmpty, "\(built.changes.blocking)")
        #expect(built.removals == ["cp-1"])
        #expect(built.steps(of: "cp-1").contains(.joinControlPlane) && !built.steps(of: "cp-1").contains(.initControlPlane))
        // Once replaced, the state names cp-2 as the anchor: cp-1 (another machine, joined) does not init again.
        var after = s
        after.cluster.initializedOn = "cp-2"
        after.hosts["cp-1"]?.address = "10.0.1.99"
        after.hosts["cp-1"]?.steps["init"] = nil
        after.hosts["cp-1"]?.steps["join-control-plane"] = StepRecord(inputHash: "x", finishedAt: Date())
        #expect(q.initControlPlane(state: after) == nil)
        #expect(ApplyPlan.make(plan: q, state: after).actions.allSatisfy { $0.id != .hostStep(host: "cp-1", step: .initControlPlane) })
    }

    @Test func aLeavingControlPlaneWhoseAddressIsTheEndpointIsRefused() throws {
        let (p, s) = try Self.cluster(endpoint: "10.0.1.10:6443")
        let set = ChangeSet.diff(plan: Self.replacingFirst(p), state: s)
        #expect(set.blocking.map(\.path) == ["spec.hosts"])
        let reason = set.blocking.first?.reason ?? ""
        #expect(reason.contains("cp-1 would be removed or replaced, but the cluster's endpoint 10.0.1.10:6443 is its own address"), "\(reason)")
        #expect(reason.contains("a DNS name or a load balancer in front of every control plane"), "\(reason)")
        // Another control plane may go (and be replaced) with the same endpoint.
        var q = p
        q.spec.hosts[1] = ClusterPlan.Host(name: "cp-4", address: "10.0.1.14", role: .controlPlane)
        #expect(ChangeSet.diff(plan: q, state: s).blocking.isEmpty)
        // The cluster address counts as well as the SSH address.
        var s2 = s
        s2.hosts["cp-1"]?.privateAddress = "172.16.0.10"
        s2.cluster.endpoint = "172.16.0.10:6443"
        var r = p
        r.spec.kubernetes.controlPlaneEndpoint = "172.16.0.10:6443"
        #expect(ChangeSet.diff(plan: Self.replacingFirst(r), state: s2).blocking.first?.reason.contains("cp-1 would be removed") == true)
    }

    @Test func quorumStillDecides() throws {
        let (p, s) = try Self.cluster()
        var q = p
        q.spec.hosts.removeAll { $0.name == "cp-1" || $0.name == "cp-2" }
        let set = ChangeSet.diff(plan: q, state: s)
        #expect(set.blocking.map(\.reason) == ["removing 2 of 3 control planes would leave 1: etcd needs a majority (2) to keep quorum; remove one at a time, keeping a majority"])
    }

    @Test func anUpgradeWithoutTheInitHostStartsOnTheFirstThatStays() throws {
        let (p, s) = try Self.cluster()
        var q = Self.replacingFirst(p)
        q.spec.kubernetes.version = "1.34.2"
        let up = try #require(Upgrade.plan(plan: q, state: s))
        #expect(up.hosts.first?.name == "cp-2" && up.hosts.first?.kind == .apply, "\(up.hosts)")
        #expect(up.snapshotOn == "cp-2")
    }
}
