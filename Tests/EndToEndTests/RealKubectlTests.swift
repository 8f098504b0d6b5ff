import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// After `apply`, the machine's real kubectl works with the kubeconfig bootstrap fetched, and the hosts ran
    /// bootstrap's kubectl commands through the real client too.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct RealKubectlTests {
        /// The machine's kubectl: required in CI, otherwise the test is skipped without one.
        static func machineKubectl() throws -> String? {
            for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
                let p = dir + "/kubectl"
                if FileManager.default.isExecutableFile(atPath: p) { return p }
            }
            if E2E.inCI { Issue.record("CI needs a real kubectl on the machine") }
            return nil
        }

        static let addons = """
              addons:
                metricsServer: { enabled: true }
                dashboard: { enabled: true }
              manifests: [ apps/my-app.yaml ]

            """

        @Test func realKubectlAgainstTheBootstrappedCluster() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                guard let kubectlPath = try Self.machineKubectl() else { return }
                let lab = try Lab(hosts: 3, net: "127.0.70")
                defer { lab.down() }
                let app = packageRoot.appendingPathComponent("Plans/apps/my-app.yaml").path
                try FileManager.default.createDirectory(atPath: (lab.work as NSString).appendingPathComponent("apps"),
                                                        withIntermediateDirectories: true)
                _ = try lab.writePlan(try String(contentsOfFile: app, encoding: .utf8), file: "apps/my-app.yaml")
                let plan = try lab.writePlan(lab.plan(workers: 2) + Self.addons)
                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                guard first.status == 0 else { return }

                // Every kubectl bootstrap ran on the hosts was the real client.
                let onHost = try lab.exec(1, "readlink -f /usr/bin/kubectl; kubectl version --client -o json")
                #expect(!onHost.stdout.contains("labnode") && onHost.stdout.contains("\"gitVersion\": \"v1."), "\(onHost.all)")

                let kubeconfig = (lab.work as NSString).appendingPathComponent("e2e.kubeconfig")
                let home = (lab.work as NSString).appendingPathComponent("kubectl-home")
                func kubectl(_ args: [String]) throws -> Output {
                    try runProgram(kubectlPath, ["--kubeconfig", kubeconfig] + args, env: ["HOME": home])
                }

                // get nodes -o wide: every node Ready, with its version and internal IP.
                let nodes = try kubectl(["get", "nodes", "-o", "wide"])
                #expect(nodes.status == 0, "\(nodes.all)")
                let rows = nodes.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
                #expect(rows.first.map { Array($0.prefix(6)) } == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"])
                let byName = Dictionary(rows.dropFirst().map { ($0[0], $0) }, uniquingKeysWith: { a, _ in a })
                for (i, name) in ["cp-1", "worker-1", "worker-2"].enumerated() {
                    let row = byName[name] ?? []
                    #expect(row.count >= 6 && row[1] == "Ready" && row[4] == "v1.34.1" && row[5] == lab.address(i + 1),
                            "\(name): \(row)")
                }

                // get pods -A: the CNI, CoreDNS and the add-ons' pods, running.
                let pods = try kubectl(["get", "pods", "-A"])
                #expect(pods.status == 0, "\(pods.all)")
                for (ns, prefix) in [("kube-flannel", "kube-flannel-ds-"), ("kube-system", "coredns-"),
                                     ("kube-system", "metrics-server-"), ("kubernetes-dashboard", "kubernetes-dashboard-"),
                                     ("my-app", "my-app-")] {
                    let line = pods.stdout.split(separator: "\n").first { $0.hasPrefix(ns + " ") && $0.contains(" " + prefix) }
                    #expect(line?.contains("Running") == true, "no running \(ns)/\(prefix)… pod in:\n\(pods.stdout)")
                }

                // apply --server-side of the manifest bootstrap applied is a no-op: with bootstrap's field manager
                // nothing changes at all; with kubectl's own, the objects stay as they are (the spec is co-owned).
                func versions() throws -> [String] {
                    let out = try kubectl(["get", "namespace/my-app", "deployment/my-app", "service/my-app", "-n", "my-app",
                                           "-o", "jsonpath={range .items[*]}{.metadata.resourceVersion}/{.metadata.generation} {end}"])
                    return out.stdout.split(separator: " ").map(String.init)
                }
                let before = try versions()
                let same = try kubectl(["apply", "--server-side", "--field-manager=bootstrap", "-f", app])
                #expect(same.status == 0, "\(same.all)")
                #expect(try versions() == before)
                let mine = try kubectl(["apply", "--server-side", "-f", app])
                #expect(mine.status == 0 && mine.stdout.contains("deployment.apps/my-app serverside-applied"), "\(mine.all)")
                #expect(try versions().map { $0.split(separator: "/").last } == before.map { $0.split(separator: "/").last })

                // drain of a worker respects a PodDisruptionBudget, then evicts its pods once the budget allows it.
                let pdb = """
                    apiVersion: policy/v1
                    kind: PodDisruptionBudget
                    metadata: { name: my-app, namespace: my-app }
                    spec:
                      minAvailable: 3
                      selector: { matchLabels: { app.kubernetes.io/name: my-app } }
                    """
                let pdbFile = try lab.writePlan(pdb, file: "pdb.yaml")
                #expect(try kubectl(["apply", "-f", pdbFile]).status == 0)
                let onWorker = try kubectl(["get", "pods", "-n", "my-app", "--field-selector", "spec.nodeName=worker-1", "-o", "name"])
                #expect(!onWorker.stdout.isEmpty, "no my-app pod on worker-1")
                let blocked = try kubectl(["drain", "worker-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=8s"])
                #expect(blocked.status != 0 && blocked.all.contains("Cannot evict pod as it would violate the pod's disruption budget"),
                        "\(blocked.all)")
                #expect(try kubectl(["patch", "pdb", "my-app", "-n", "my-app", "--type=merge",
                                     "-p", "{\"spec\":{\"minAvailable\":2}}"]).status == 0)
                let drained = try kubectl(["drain", "worker-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s"])
                #expect(drained.status == 0 && drained.stdout.contains("node/worker-1 drained"), "\(drained.all)")
                let left = try kubectl(["get", "pods", "-A", "--field-selector", "spec.nodeName=worker-1", "--no-headers"])
                for line in left.stdout.split(separator: "\n") {
                    #expect(line.contains("kube-flannel-ds-") || line.contains("kube-proxy-"), "still on worker-1: \(line)")
                }
                let ready = try kubectl(["get", "deployment", "my-app", "-n", "my-app", "-o", "jsonpath={.status.readyReplicas}"])
                #expect(ready.stdout == "3")
                #expect(try kubectl(["uncordon", "worker-1"]).status == 0)

                // auth can-i answers for the dashboard's read-only account as RBAC says.
                let viewer = "--as=system:serviceaccount:kubernetes-dashboard:dashboard-viewer"
                for (args, want) in [(["list", "pods", "-A"], "yes"), (["get", "deployments", "-n", "my-app"], "yes"),
                                     (["get", "secrets", "-n", "my-app"], "no"), (["delete", "pods", "-n", "my-app"], "no"),
                                     (["create", "deployments", "-n", "default"], "no")] {
                    let out = try kubectl(["auth", "can-i"] + args + [viewer])
                    #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == want, "can-i \(args): \(out.all)")
                }
            }
        }
    }
}
