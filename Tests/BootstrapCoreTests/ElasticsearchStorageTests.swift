import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

/// Elasticsearch's data: in the pod unless the plan names a StorageClass (a kubeadm cluster has none, so a claim
/// without one would stay Pending and `helm --wait` with it).
@Suite struct ElasticsearchStorageTests {
    static func logging(_ fields: String) -> String {
        basePlanYAML + "\n  addons:\n    logging:\n      enabled: true\n" + fields
    }

    static func elasticsearch(_ p: ClusterPlan) throws -> HelmRelease {
        try #require(Releases.desired(for: p).first { $0.key == "logging/elasticsearch" })
    }

    @Test func withoutAStorageClassTheDataLivesInThePod() throws {
        let es = try Self.elasticsearch(try plan(Self.logging("")))
        #expect(es.values["persistence"]?["enabled"] == .bool(false))
        #expect(es.values["volumeClaimTemplate"] == nil)
        #expect(Releases.elasticsearchClaim(es.values) == nil)
        // The values file Helm reads says so too.
        #expect(HelmRecipes.valuesFile(es, secrets: [:]).contains("enabled: false"))
    }

    @Test func aNamedStorageClassGetsAClaimOfIt() throws {
        let p = try plan(Self.logging("      storageClass: local-path\n"))
        #expect(p.spec.addons.logging.storageClass == "local-path")
        let es = try Self.elasticsearch(p)
        #expect(es.values["persistence"]?["enabled"] == .bool(true))
        #expect(es.values["volumeClaimTemplate"]?["storageClassName"] == "local-path")
        #expect(es.values["volumeClaimTemplate"]?["resources"]?["requests"]?["storage"] == "5Gi")
        #expect(es.values["volumeClaimTemplate"]?["accessModes"] == .array(["ReadWriteOnce"]))
        let sized = try Self.elasticsearch(try plan(Self.logging("      storageClass: fast\n      storageSize: 20Gi\n")))
        #expect(sized.values["volumeClaimTemplate"]?["resources"]?["requests"]?["storage"] == "20Gi")
        #expect(sized.valuesHash != es.valuesHash)
        // The plan written back keeps the fields.
        #expect(PlanYAML.text(p).contains("storageClass: local-path"))
    }

    @Test func badStorageFieldsNameThePathAndLine() {
        let bad = load(Self.logging("      storageClass: Fast_SSD\n      storageSize: lots\n"))
        #expect(has(bad, path: "spec.addons.logging.storageClass", containing: "\"Fast_SSD\" is not a StorageClass name"))
        #expect(has(bad, path: "spec.addons.logging.storageSize", containing: "\"lots\" is not a storage size"))
        #expect(bad.diagnostics.first { $0.path == "spec.addons.logging.storageClass" }?.line == 20)
        #expect(has(load(Self.logging("      storageClass: fast\n      storageSize: \"0\"\n")),
                    path: "spec.addons.logging.storageSize", containing: "is not a storage size"))
        let sizeOnly = load(Self.logging("      storageSize: 10Gi\n"))
        #expect(has(sizeOnly, path: "spec.addons.logging.storageSize", containing: "no effect without storageClass"))
        #expect(sizeOnly.diagnostics.first { $0.path == "spec.addons.logging.storageSize" }?.line == 20)
        // Only logging has storage.
        let other = load(basePlanYAML + "\n  addons:\n    monitoring: { enabled: true, storageClass: fast }\n")
        #expect(has(other, path: "spec.addons.monitoring.storageClass", containing: "unknown field"))
    }

    /// A live cluster's Elasticsearch keeps its claim template: Kubernetes refuses to change it, so plan refuses
    /// with the way there; the same storage again, or logging turned off, is no blocker.
    @Test func aChangedClaimOfALiveClusterIsRefusedWithTheWayThere() throws {
        let inPod = try plan(Self.logging(""))
        let state = appliedState(inPod)
        #expect(ApplyPlan.make(plan: inPod, state: state).blockers.isEmpty)
        let withClass = try plan(Self.logging("      storageClass: fast\n"))
        let a = ApplyPlan.make(plan: withClass, state: state)
        let b = try #require(a.blockers.first)
        #expect(a.blockers.count == 1)
        #expect(b.path == "spec.addons.logging.storageClass")
        #expect(b.reason.contains("volumeClaimTemplates") && b.reason.contains("spec.addons.logging.enabled: false"))
        // A size change of an existing claim is refused alike; turning logging off is not.
        let bigger = try plan(Self.logging("      storageClass: fast\n      storageSize: 9Gi\n"))
        #expect(ApplyPlan.make(plan: bigger, state: appliedState(withClass)).blockers.count == 1)
        #expect(ApplyPlan.make(plan: try plan(basePlanYAML), state: appliedState(withClass)).blockers.isEmpty)
        // A release recorded by an earlier version (a claim without a class, the chart's persistence default):
        // the new default is a change of the claim too, and is refused rather than left to fail in helm.
        var old = appliedState(inPod)
        old.addons["logging/elasticsearch"]?.values = .object([
            "replicas": .int(1),
            "volumeClaimTemplate": .object(["accessModes": .array(["ReadWriteOnce"]),
                                            "resources": .object(["requests": .object(["storage": "5Gi"])])]),
        ])
        #expect(ApplyPlan.make(plan: inPod, state: old).blockers.count == 1)
        // The README's way to keep that claim: the old template given back as values; the release is still
        // upgraded (persistence.enabled is now explicit), which Kubernetes allows.
        let kept = try plan(Self.logging("""
                  values:
                    elasticsearch:
                      persistence: { enabled: true }
                      volumeClaimTemplate: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 5Gi } } }

            """))
        let keep = ApplyPlan.make(plan: kept, state: old)
        #expect(keep.blockers.isEmpty)
        #expect(keep.actions.contains { $0.id == .release(key: "logging/elasticsearch") })
    }
}
