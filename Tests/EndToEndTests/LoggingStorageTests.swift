import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// Elasticsearch's data on a claim of a StorageClass the user made: the claim binds, and a later change of
    /// the claim is refused (Kubernetes forbids changing a StatefulSet's volumeClaimTemplates).
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct LoggingStorageTests {
        static let storageClass = """
            apiVersion: storage.k8s.io/v1
            kind: StorageClass
            metadata: { name: fast }
            provisioner: rancher.io/local-path
            reclaimPolicy: Delete
            volumeBindingMode: Immediate

            """

        @Test func aNamedStorageClassGetsABoundClaim() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.151")
                defer { lab.down() }
                _ = try lab.writePlan(Self.storageClass, file: "storage.yaml")
                let base = lab.plan(workers: 1) + "  manifests: [ storage.yaml ]\n"
                // The class first (manifests are applied after the add-ons), then logging on it.
                let first = try lab.bootstrap(["apply", "-f", try lab.writePlan(base), "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                let logging = base + "  addons:\n    logging: { enabled: true, storageClass: fast, storageSize: 2Gi }\n"
                let plan = try lab.writePlan(logging)
                let second = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(second.status == 0, "\(second.all)")
                let pvcs = try lab.kubectl("get pvc -n logging -o json")
                let items = (try JSONSerialization.jsonObject(with: Data(pvcs.stdout.utf8)) as? [String: Any])?["items"]
                    as? [[String: Any]] ?? []
                #expect(items.count == 1, "\(pvcs.all)")
                let claim = items.first ?? [:]
                #expect((claim["metadata"] as? [String: Any])?["name"] as? String
                        == "elasticsearch-master-elasticsearch-master-0")
                #expect((claim["spec"] as? [String: Any])?["storageClassName"] as? String == "fast")
                #expect((claim["status"] as? [String: Any])?["phase"] as? String == "Bound")
                #expect(((claim["status"] as? [String: Any])?["capacity"] as? [String: Any])?["storage"] as? String == "2Gi")
                #expect(try lab.kubectl("get pod elasticsearch-master-0 -n logging -o jsonpath={.status.phase}").stdout
                        == "Running")

                // Another size: refused by plan with the way there, nothing changed.
                let bigger = try lab.writePlan(logging.replacingOccurrences(of: "storageSize: 2Gi", with: "storageSize: 4Gi"))
                let refused = try lab.bootstrap(["plan", "-f", bigger])
                #expect(refused.status == 1, "\(refused.all)")
                #expect(refused.all.contains("volumeClaimTemplates"), "\(refused.all)")
                #expect(refused.all.contains("spec.addons.logging.enabled: false"), "\(refused.all)")
            }
        }
    }
}
