import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

@Suite struct DiffTests {
    let base: ClusterPlan

    init() throws {
        base = try plan(basePlanYAML + """

              addons:
                metricsServer: {enabled: true}
                monitoring:
                  enabled: true
                  version: 70.0.0
                  values: {grafana: {adminUser: admin}, retention: 15d}
              manifests: [app.yaml, extra.yaml]
            """, files: ["/plans/app.yaml", "/plans/extra.yaml"])
    }

    static let files = [
        "app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {k: v}\n",
        "extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: tools}\n",
    ]
    func objects(_ p: ClusterPlan, _ files: [String: String] = DiffTests.files) -> [KubeObject] {
        (try? Manifests.desired(for: p, files: files)) ?? []
    }
    var applied: ClusterState { appliedState(base, objects: objects(base)) }

    func host(_ set: ChangeSet, _ name: String) -> Change? {
        set.changes.first { $0.subject == .host && $0.name == name }
    }

    @Test func freshClusterCreatesEverything() {
        let set = ChangeSet.diff(plan: base, state: nil, objects: objects(base))
        #expect(set.changes.map { "\($0.action.symbol) \($0.subject.rawValue) \($0.name)" } == [
            "+ cluster demo", "+ host cp-1", "+ host worker-1", "+ addon cni/flannel",
            "+ addon metricsServer/metrics-server", "+ addon monitoring/kube-prometheus-stack",
            "+ manifest ConfigMap/default/app", "+ manifest ConfigMap/tools/extra",
        ])
        #expect(set.changes[0].steps == ["helm", "kubeconfig"])
        #expect(host(set, "cp-1")?.steps == ["prepare", "kubernetes-repo", "kubernetes-packages", "containerd", "images", "init",
                                             "node-config"])
        #expect(host(set, "worker-1")?.steps.contains("join-worker") == true)
        #expect(set.summary == ChangeSummary(add: 8, change: 0, destroy: 0))
        #expect(set.blocking.isEmpty)
        // An empty state file diffs like no state at all.
        let empty = ClusterState(name: "demo", toolVersion: "0.1.0")
        #expect(ChangeSet.diff(plan: base, state: empty, objects: objects(base)).changes == set.changes)
    }

    @Test func appliedStateHasNoChanges() {
        let set = ChangeSet.diff(plan: base, state: applied, objects: objects(base))
        #expect(set.changes.isEmpty, "\(set.changes)")
        #expect(set.isEmpty)
        #expect(set.summary == ChangeSummary())
    }

    @Test func newHostIsCreated() {
        var p = base
        p.spec.hosts.append(ClusterPlan.Host(name: "worker-2", address: "10.0.1.22", role: .worker))
        let set = ChangeSet.diff(plan: p, state: applied, objects: objects(p))
        #expect(set.changes.count == 1)
        #expect(host(set, "worker-2")?.action == .create)
        #expect(set.summary == ChangeSummary(add: 1))
    }

    @Test func removedHostIsDeleted() {
        var p = base
        p.spec.hosts.removeLast()
        let set = ChangeSet.diff(plan: p, state: applied, objects: objects(p))
        #expect(set.changes.count == 2)
        let c = host(set, "worker-1")
        #expect(c?.action == .delete)
        #expect(c?.address == "10.0.1.21")
        // The last worker gone, the control plane's node-config runs again (to drop kubeadm's taint).
        #expect(host(set, "cp-1")?.action == .update)
        #expect(host(set, "cp-1")?.steps == ["node-config"])
        #expect(set.summary == ChangeSummary(change: 1, destroy: 1))
    }

    @Test func addressChangeForcesReplacement() {
        var p = base
        p.spec.hosts[1].address = "10.0.1.99"
        let set = ChangeSet.diff(plan: p, state: applied, objects: objects(p))
        let c = host(set, "worker-1")
        #expect(c?.action == .replace)
        #expect(c?.reasons == ["address changed 10.0.1.21 → 10.0.1.99 forces replacement"])
        #expect(c?.steps.first == "prepare")
        #expect(set.summary == ChangeSummary(add: 1, destroy: 1))
    }

    @Test func roleChangeForcesReplacement() {
        var p = base
        p.spec.hosts[1].role = .controlPlane
        p.spec.kubernetes.controlPlaneEndpoint = "api.x:6443"
        let set = ChangeSet.diff(plan: p, state: applied, objects: objects(p))
        let c = host(set, "worker-1")
        #expect(c?.action == .replace)
        #expect(c?.reasons.contains("role changed worker → control-plane forces replacement") == true)
        #expect(c?.steps.contains("join-control-plane") == true)
    }

    @Test func labelAndTaintChangesUpdateInPlace() {
        var p = base
        p.spec.hosts[1].labels = ["tier": "app"]
        p.spec.hosts[1].taints = [ClusterPlan.Taint(key: "dedicated", value: "gpu", effect: .noSchedule)]
        let set = ChangeSet.diff(plan: p, state: applied, objects: objects(p))
        #expect(set.changes.count == 1)
        let c = host(set, "worker-1")
        #expect(c?.action == .update)
        #expect(c?.steps == ["node-config"])
        #expect(c?.changedPaths == ["labels", "taints"])
        #expect(c?.reasons == ["labels changed: +tier=app", "taints changed: [] → [dedicated=gpu:NoSchedule]"])
        #expect(set.summary == ChangeSummary(change: 1))
    }

    @Test func unfinishedStepsShowAsUpdates() {
        var s = applied
        s.hosts["worker-1"]?.steps["kubernetes-packages"] = nil
        s.hosts["worker-1"]?.steps["join-worker"] = nil
        s.hosts["worker-1"]?.steps["node-config"] = nil
        let set = ChangeSet.diff(plan: base, state: s, objects: objects(base))
        let c = host(set, "worker-1")
        #expect(c?.action == .update)
        #expect(c?.steps == ["kubernetes-packages", "join-worker", "node-config"])
        #expect(c?.reasons.first == "kubernetes-packages not done yet")
    }

    @Test func versionChangeIsAnUpgrade() {
        var p = base
        p.spec.kubernetes.version = "1.34.0"
        var s = applied
        s.cluster.kubernetesVersion = "1.33.5"
        for name in ["cp-1", "worker-1"] {
            s.hosts[name]?.steps["kubernetes-packages"]?.inputHash = Upgrade.stepHash(p, version: "1.33.5", step: .kubernetesPackages)
            s.hosts[name]?.steps["kubernetes-repo"]?.inputHash = Upgrade.stepHash(p, version: "1.33.5", step: .kubernetesRepo)
        }
        let set = ChangeSet.diff(plan: p, state: s, objects: objects(p))
        let c = set.changes.first { $0.subject == .cluster }
        #expect(c?.action == .update)
        #expect(c?.supported == true)
        #expect(c?.reasons.first == "upgrade 1.33.5 → 1.34.0, etcd snapshot on cp-1 first, then 2 nodes in order")
        #expect(set.blocking.isEmpty)
        #expect(host(set, "worker-1")?.reasons == ["upgrade 1.33.5 → 1.34.0: drain, upgrade, uncordon (batch 1 of 1)"])
    }

    @Test func networkChangesOnALiveClusterAreRefused() {
        var p = base
        p.spec.network.podSubnet = "10.240.0.0/16"
        p.spec.network.serviceSubnet = "10.112.0.0/12"
        p.spec.network.cni = .calico
        let set = ChangeSet.diff(plan: p, state: applied, objects: objects(p))
        #expect(set.blocking.map(\.path) == ["spec.network.cni", "spec.network.podSubnet", "spec.network.serviceSubnet"])
        #expect(set.blocking[1].reason.contains("10.244.0.0/16 → 10.240.0.0/16"))
        #expect(!set.isEmpty)
        // Before init the same plan is just a fresh cluster.
        var s = applied
        s.cluster.initializedOn = nil
        #expect(ChangeSet.diff(plan: p, state: s, objects: objects(p)).blocking.isEmpty)
    }

    @Test func addonChanges() {
        var p = base
        p.spec.addons.metricsServer.enabled = false
        p.spec.addons.monitoring.version = "71.0.0"
        p.spec.addons.monitoring.values = .object(["grafana": .object(["adminUser": .string("root")]),
                                                   "retention": .string("15d")])
        p.spec.addons.logging.enabled = true
        let set = ChangeSet.diff(plan: p, state: applied, objects: objects(p))
        let addons = set.changes(of: .addon)
        #expect(addons.map { "\($0.action.symbol) \($0.name)" } == [
            "~ monitoring/kube-prometheus-stack", "+ logging/elasticsearch", "+ logging/kibana", "+ logging/fluentd",
            "- metricsServer/metrics-server",
        ])
        let mon = addons.first { $0.name == "monitoring/kube-prometheus-stack" }
        #expect(mon?.reasons == ["chart version 70.0.0 → 71.0.0", "values changed"])
        #expect(mon?.changedPaths == ["values.grafana.adminUser"])
        #expect(addons.last?.reasons == ["disabled in the plan"])
        #expect(set.summary == ChangeSummary(add: 3, change: 1, destroy: 1))
    }

    @Test func oneChangedValueIsOneUpdateWithItsPath() {
        var p = base
        p.spec.addons.monitoring.nodePorts["grafana"] = 31000
        let set = ChangeSet.diff(plan: p, state: applied, objects: objects(p))
        #expect(set.changes.count == 1)
        #expect(set.changes.first?.action == .update)
        #expect(set.changes.first?.changedPaths == ["values.grafana.service.nodePort"])
    }

    @Test func manifestChanges() {
        var p = base
        p.spec.manifests = ["app.yaml", "new.yaml"]
        let files = ["app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {k: changed}\n",
                     "new.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n"]
        let set = ChangeSet.diff(plan: p, state: applied, objects: objects(p, files))
        #expect(set.changes(of: .manifest).map { "\($0.action.symbol) \($0.name)" }
                == ["~ ConfigMap/default/app", "+ ConfigMap/default/new", "- ConfigMap/tools/extra"])
    }

    @Test func diffIsDeterministic() {
        var p = base
        for i in 0..<30 { p.spec.hosts.append(ClusterPlan.Host(name: "w\(i)", address: "10.0.2.\(i + 1)", role: .worker)) }
        var s = applied
        for i in 0..<30 { s.hosts["old-\(i)"] = HostRecord(address: "10.0.3.\(i + 1)", port: 22, role: .worker) }
        let a = ChangeSet.diff(plan: p, state: s, objects: objects(p))
        for _ in 0..<5 { #expect(ChangeSet.diff(plan: p, state: s, objects: objects(p)) == a) }
        let deleted = a.changes.filter { $0.action == .delete }.map(\.name)
        #expect(deleted == deleted.sorted())
    }

    @Test func changedValuePaths() {
        let desired: JSONValue = .object(["a": .object(["b": .int(1), "c": .string("x")]), "d": .bool(true)])
        let actual: JSONValue = .object(["a": .object(["b": .int(2), "c": .string("x"), "z": .null])])
        #expect(ChangeSet.changedValuePaths(desired, actual, prefix: "values") == ["values.a.b", "values.a.z", "values.d"])
    }
}

@Suite struct SavedPlanTests {
    let p: ClusterPlan
    init() throws { p = try plan(basePlanYAML) }

    @Test func freshWhenNothingMoved() {
        let s = appliedState(p)
        let saved = SavedPlan(plan: p, state: s, changes: ChangeSet.diff(plan: p, state: s))
        #expect(saved.staleness(against: s) == nil)
        let none = SavedPlan(plan: p, state: nil, changes: ChangeSet.diff(plan: p, state: nil))
        #expect(none.staleness(against: nil) == nil)
    }

    @Test func staleWhenSerialOrLineageMoved() {
        let s = appliedState(p)
        let saved = SavedPlan(plan: p, state: s, changes: ChangeSet.diff(plan: p, state: s))
        var moved = s
        moved.serial += 1
        #expect(saved.staleness(against: moved)?.contains("serial 7 → 8") == true)
        var other = s
        other.lineage = "other"
        #expect(saved.staleness(against: other)?.contains("another state") == true)
        #expect(saved.staleness(against: nil)?.contains("no state file now") == true)
        let none = SavedPlan(plan: p, state: nil, changes: ChangeSet.diff(plan: p, state: nil))
        #expect(none.staleness(against: s)?.contains("no state existed") == true)
    }

    @Test func survivesAJSONRoundTrip() throws {
        let s = appliedState(p)
        let saved = SavedPlan(plan: p, state: s, changes: ChangeSet.diff(plan: p, state: nil))
        let data = saved.encoded()
        let back = try JSONDecoder().decode(SavedPlan.self, from: data)
        #expect(back == saved)
        var newer = back
        newer.formatVersion = 99
        #expect(newer.staleness(against: s)?.contains("format 99") == true)
    }
}

@Suite struct SavedPlanDecodingTests {
    @Test func savedPlanDecoding() throws {
        let p = try plan(basePlanYAML)
        let saved = SavedPlan(plan: p, state: nil, changes: ChangeSet.diff(plan: p, state: nil))
        #expect(try SavedPlan.decode(saved.encoded()) == saved)
        #expect(throws: SavedPlan.LoadError.newerFormat(5)) { try SavedPlan.decode(Data("{\"formatVersion\": 5}".utf8)) }
        #expect(throws: SavedPlan.LoadError.self) { try SavedPlan.decode(Data("{\"formatVersion\": 1}".utf8)) }
        #expect(throws: SavedPlan.LoadError.self) { try SavedPlan.decode(Data("not json".utf8)) }
    }
}

@Suite struct ControlPlaneSafetyTests {
    @Test func removingEveryControlPlaneOfALiveClusterIsRefused() throws {
        let p = try plan(basePlanYAML)
        let s = appliedState(p)
        var moved = p
        moved.spec.hosts[0].address = "10.0.1.99"
        let set = ChangeSet.diff(plan: moved, state: s)
        #expect(set.blocking.map(\.path) == ["spec.hosts"])
        #expect(set.blocking.first?.reason.contains("every control plane of the live cluster (cp-1)") == true)
    }

    @Test func theInitHostMayBeListedAnywhere() throws {
        let three = edited("role: worker", "role: control-plane")
        var p = try plan(edited(three, "version: \"1.34.1\"", "version: \"1.34.1\"\n    controlPlaneEndpoint: api.x:6443"))
        let s = appliedState(p)
        p.spec.hosts.swapAt(0, 1)
        let set = ChangeSet.diff(plan: p, state: s)
        #expect(set.blocking.isEmpty && set.changes.isEmpty, "\(set)")
        // Adding a control plane is fine, listed first too: it joins.
        var q = try plan(edited(three, "version: \"1.34.1\"", "version: \"1.34.1\"\n    controlPlaneEndpoint: api.x:6443"))
        let s2 = appliedState(q)
        q.spec.hosts.insert(ClusterPlan.Host(name: "cp-9", address: "10.0.1.90", role: .controlPlane), at: 0)
        let added = ChangeSet.diff(plan: q, state: s2)
        #expect(added.blocking.isEmpty)
        #expect(added.changes.first { $0.name == "cp-9" }?.steps.contains("join-control-plane") == true)
    }
}

@Suite struct MoreDiffTests {
    @Test func sshPortChangeIsAnUpdateWithoutSteps() throws {
        var p = try plan(basePlanYAML)
        let s = appliedState(p)
        p.spec.hosts[1].port = 2222
        let set = ChangeSet.diff(plan: p, state: s)
        #expect(set.changes.count == 1)
        #expect(set.changes.first?.action == .update)
        #expect(set.changes.first?.reasons == ["SSH port changed 22 → 2222"])
        #expect(set.changes.first?.steps == [])
    }

    @Test func endpointChangeOnALiveClusterIsRefused() throws {
        var p = try plan(edited("version: \"1.34.1\"", "version: \"1.34.1\"\n    controlPlaneEndpoint: api.a:6443"))
        let s = appliedState(p)
        p.spec.kubernetes.controlPlaneEndpoint = "api.b:6443"
        let set = ChangeSet.diff(plan: p, state: s)
        #expect(set.blocking.map(\.path) == ["spec.kubernetes.controlPlaneEndpoint"])
        #expect(set.blocking.first?.reason.contains("api.a:6443 → api.b:6443") == true)
    }

    @Test func clusterStepsLeftUndoneShowAsAClusterUpdate() throws {
        let p = try plan(basePlanYAML)
        var s = appliedState(p)
        s.cluster.steps["kubeconfig"] = nil
        let set = ChangeSet.diff(plan: p, state: s)
        #expect(set.changes.map(\.subject) == [.cluster])
        #expect(set.changes.first?.steps == ["kubeconfig"])
        #expect(set.changes.first?.reasons == ["kubeconfig not done yet"])
        #expect(set.changes.first?.supported == true)
    }
}
