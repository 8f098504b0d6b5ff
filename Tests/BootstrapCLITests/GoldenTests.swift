import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCLI
@testable import BootstrapCore

/// `bootstrap plan` output for the example plans, compared with files under Golden/.
/// Regenerate with `UPDATE_GOLDEN=1 swift test --filter GoldenTests` and review the diff.
@Suite struct GoldenTests {
    static func examplePlan(_ name: String) throws -> ClusterPlan {
        let dir = repoRoot.appendingPathComponent("Plans")
        let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
        let r = PlanLoader.load(text: text, path: "Plans/\(name)", baseDirectory: dir.path,
                                fileExists: { FileManager.default.fileExists(atPath: $0) })
        return try #require(r.plan)
    }

    static func objects(_ plan: ClusterPlan) throws -> [KubeObject] {
        var files: [String: String] = [:]
        for m in plan.spec.manifests {
            files[m] = try String(contentsOfFile: Validation.resolve(m, against: plan.source.baseDirectory), encoding: .utf8)
        }
        return try Manifests.desired(for: plan, files: files)
    }

    func check(_ actual: String, golden name: String) throws {
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] != nil {
            let dst = repoRoot.appendingPathComponent("Tests/BootstrapCLITests/Golden/\(name)")
            try Data(actual.utf8).write(to: dst)
            return
        }
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Golden"),
                               "missing golden \(name)")
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(actual == expected, "output differs from Golden/\(name)")
    }

    @Test(arguments: ["lab", "ec2-basic", "ec2-ha"])
    func planOnEmptyState(name: String) throws {
        let p = try GoldenTests.examplePlan("\(name).yaml")
        let set = ChangeSet.diff(plan: p, state: nil, objects: try GoldenTests.objects(p))
        let text = PlanRenderer.text(set, plan: p, state: nil, color: false)
        #expect(!text.contains("\u{1B}"))
        // Every host shows as `+` with its steps.
        for h in p.spec.hosts { #expect(text.contains("  + host \(h.name)  (\(h.address), \(h.role.rawValue))\n      steps: prepare")) }
        try check(text, golden: "\(name).plan.txt")
    }

    @Test func labPlanAgainstAChangedState() throws {
        let p = try GoldenTests.examplePlan("lab.yaml")
        var s = appliedState(p)
        s.hosts["worker-1"]?.labels = [:]
        s.hosts["worker-2"]?.address = "127.0.0.23"
        s.hosts["worker-3"] = HostRecord(address: "127.0.0.14", port: 22, role: .worker)
        s.cluster.kubernetesVersion = "1.33.5"
        for name in ["cp-1", "worker-1"] {
            s.hosts[name]?.steps["kubernetes-packages"]?.inputHash = Upgrade.stepHash(p, version: "1.33.5", step: .kubernetesPackages)
        }
        var dashboard = Releases.dashboard(ClusterPlan.Addon(enabled: true, version: "7.13.0"))[0]
        dashboard.values = .object(["kong": .object(["proxy": .object(["type": .string("LoadBalancer")])])])
        s.addons[dashboard.key] = AddonRecord(dashboard)
        // The recorded CNI release has one value the plan would not give it.
        var cni = Releases.cni(p.spec.network)
        cni.values = cni.values.merged(with: .object(["installation": .object(["kubernetesProvider": .string("EKS")])]))
        s.addons[cni.key] = AddonRecord(cni)
        let set = ChangeSet.diff(plan: p, state: s)
        try check(PlanRenderer.text(set, plan: p, state: s, color: false), golden: "lab-changed.plan.txt")
        try check(PlanRenderer.json(PlanRenderer.document(set, state: s)), golden: "lab-changed.plan.json")
    }

    @Test func labPlanWithNothingToDo() throws {
        let p = try GoldenTests.examplePlan("lab.yaml")
        let s = appliedState(p)
        let text = PlanRenderer.text(ChangeSet.diff(plan: p, state: s), plan: p, state: s, color: false)
        #expect(text.hasSuffix("No changes. The cluster matches the plan.\n"))
        #expect(!text.contains("Plan:"))
    }

    @Test func blockedPlanSaysWhy() throws {
        var p = try GoldenTests.examplePlan("lab.yaml")
        let s = appliedState(p)
        p.spec.network.podSubnet = "10.245.0.0/16"
        let text = PlanRenderer.text(ChangeSet.diff(plan: p, state: s), plan: p, state: s, color: false)
        #expect(text.contains("Error: this plan cannot be applied:\n  ✗ spec.network.podSubnet: pod subnet changed 10.244.0.0/16 → 10.245.0.0/16"))
    }

    @Test func colourOnlyWhenAsked() throws {
        let p = try GoldenTests.examplePlan("lab.yaml")
        let set = ChangeSet.diff(plan: p, state: nil)
        #expect(PlanRenderer.text(set, plan: p, state: nil, color: true).contains("\u{1B}[32m+\u{1B}[0m"))
    }

    @Test func jsonDocumentIsVersioned() throws {
        let p = try GoldenTests.examplePlan("lab.yaml")
        let set = ChangeSet.diff(plan: p, state: nil)
        let obj = try JSONSerialization.jsonObject(with: Data(PlanRenderer.json(PlanRenderer.document(set, state: nil)).utf8))
        let doc = try #require(obj as? [String: Any])
        #expect(doc["formatVersion"] as? Int == 1)
        #expect((doc["changes"] as? [Any])?.count == set.changes.count)
        let summary = try #require(doc["summary"] as? [String: Int])
        #expect(summary == ["add": 12, "change": 0, "destroy": 0])  // cluster, 3 hosts, 8 releases (CNI + 7)
    }
}
