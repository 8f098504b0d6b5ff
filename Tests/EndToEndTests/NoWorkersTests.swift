import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// A plan without workers: the control plane loses kubeadm's NoSchedule taint, so workloads run; a worker
    /// added later brings the taint back.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct NoWorkersTests {
        static let app = """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web
              namespace: default
            spec:
              replicas: 1
              selector:
                matchLabels: { app: web }
              template:
                metadata:
                  labels: { app: web }
                spec:
                  containers:
                    - name: web
                      image: nginx:1.27-alpine
                      resources:
                        requests: { cpu: 10m, memory: 16Mi }
                        limits: { cpu: 100m, memory: 64Mi }

            """

        func controlPlaneTaints(_ lab: Lab) throws -> [String] {
            let out = try lab.kubectl("get node cp-1 -o json")
            let obj = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any] ?? [:]
            let taints = ((obj["spec"] as? [String: Any])?["taints"] as? [[String: Any]]) ?? []
            return taints.map { "\($0["key"] as? String ?? "?"):\($0["effect"] as? String ?? "?")" }
        }

        /// Where the pods of `web` run, and in which phase.
        func webPods(_ lab: Lab) throws -> [String] {
            let out = try lab.kubectl("get pods -n default -l app=web -o json")
            let obj = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any] ?? [:]
            return (obj["items"] as? [[String: Any]] ?? []).map { pod in
                let node = (pod["spec"] as? [String: Any])?["nodeName"] as? String ?? "-"
                let phase = (pod["status"] as? [String: Any])?["phase"] as? String ?? "?"
                return "\(node) \(phase)"
            }
        }

        @Test func controlPlaneRunsWorkloadsWithoutWorkersAndIsTaintedAgainWithThem() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.62")
                defer { lab.down() }
                _ = try lab.writePlan(Self.app, file: "web.yaml")
                let alone = try lab.writePlan(lab.plan(workers: 0) + "  manifests: [web.yaml]\n")
                let first = try lab.bootstrap(["apply", "-f", alone, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                let untainted = try controlPlaneTaints(lab)
                #expect(!untainted.contains("node-role.kubernetes.io/control-plane:NoSchedule"), "\(untainted)")
                // The scheduler places the application on the only node.
                var pods: [String] = []
                for _ in 0..<50 {
                    pods = try webPods(lab)
                    if pods == ["cp-1 Running"] { break }
                    Thread.sleep(forTimeInterval: 0.2)
                }
                #expect(pods == ["cp-1 Running"], "\(pods)")
                let noop = try lab.bootstrap(["apply", "-f", alone, "--auto-approve"])
                #expect(noop.status == 0 && noop.stdout.contains("No changes."), "\(noop.all)")

                // A worker joins: the control plane is kubeadm's again.
                let withWorker = try lab.writePlan(lab.plan(workers: 1) + "  manifests: [web.yaml]\n", file: "plan2.yaml")
                let second = try lab.bootstrap(["apply", "-f", withWorker, "--auto-approve"])
                #expect(second.status == 0, "\(second.all)")
                #expect(second.stdout.contains("~ host cp-1"), "\(second.stdout)")
                let tainted = try controlPlaneTaints(lab)
                #expect(tainted.contains("node-role.kubernetes.io/control-plane:NoSchedule"), "\(tainted)")
            }
        }
    }
}
