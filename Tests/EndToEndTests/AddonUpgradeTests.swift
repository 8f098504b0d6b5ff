import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// A Kubernetes minor upgrade of a cluster that runs every add-on and an app (issue 13), as a user runs it:
    /// the default plan with every add-on enabled, the version edited, `plan`, `apply`.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct AddonUpgradeTests {
        func json(_ out: Output) throws -> Any {
            try JSONSerialization.jsonObject(with: Data(out.stdout.utf8))
        }

        func helm(_ lab: Lab, _ args: String) throws -> Output {
            try lab.exec(1, "/usr/local/bin/helm --kubeconfig /etc/kubernetes/admin.conf \(args)")
        }

        /// Every Helm release: name → (namespace, chart, revision, status), from the lab's helm.
        func releases(_ lab: Lab) throws -> [String: (namespace: String, chart: String, revision: Int, status: String)] {
            let list = try json(helm(lab, "list -A -o json")) as? [[String: Any]] ?? []
            var out: [String: (String, String, Int, String)] = [:]
            for r in list {
                out[r["name"] as? String ?? "?"] = (r["namespace"] as? String ?? "?", r["chart"] as? String ?? "?",
                                                   Int(r["revision"] as? String ?? "") ?? r["revision"] as? Int ?? 0,
                                                   r["status"] as? String ?? "?")
            }
            return out
        }

        /// `NS/NAME` → node of every pod in `namespace` that is not Ready (or not scheduled).
        func unready(_ lab: Lab, _ namespace: String) throws -> [String] {
            let obj = try json(lab.kubectl("get pods -n \(namespace) -o json")) as? [String: Any]
            return ((obj?["items"] as? [[String: Any]]) ?? []).compactMap { pod in
                let name = (pod["metadata"] as? [String: Any])?["name"] as? String ?? "?"
                let node = (pod["spec"] as? [String: Any])?["nodeName"] as? String ?? "(unscheduled)"
                let conds = ((pod["status"] as? [String: Any])?["conditions"] as? [[String: Any]]) ?? []
                let ready = conds.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" }
                return ready ? nil : "\(namespace)/\(name) on \(node)"
            }
        }

        /// Every PodDisruptionBudget: `NS/NAME` → (disruptions allowed, current healthy, desired healthy).
        func budgets(_ lab: Lab) throws -> [String: [Int]] {
            let obj = try json(lab.kubectl("get pdb -A -o json")) as? [String: Any]
            var out: [String: [Int]] = [:]
            for pdb in (obj?["items"] as? [[String: Any]]) ?? [] {
                let md = pdb["metadata"] as? [String: Any]
                let st = pdb["status"] as? [String: Any]
                out["\(md?["namespace"] as? String ?? "?")/\(md?["name"] as? String ?? "?")"] =
                    ["disruptionsAllowed", "currentHealthy", "desiredHealthy"].map { st?[$0] as? Int ?? -1 }
            }
            return out
        }

        @Test func everyAddonAndAnAppFrom1_35To1_36() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.117")
                defer { lab.down() }
                let app = try String(contentsOfFile: packageRoot.appendingPathComponent("Plans/apps/my-app.yaml").path, encoding: .utf8)
                _ = try lab.writePlan(app, file: "app.yaml")
                let text = lab.plan(workers: 2) + AddonsTests.addons
                func plan(_ version: String) throws -> String {
                    try lab.writePlan(text.replacingOccurrences(of: "\"1.34.1\"", with: "\"\(version)\""))
                }
                let create = try lab.bootstrap(["apply", "-f", plan("1.35.5"), "--auto-approve"])
                #expect(create.status == 0, "\(create.all)")
                let before = try releases(lab)
                #expect(before.mapValues(\.chart) == AddonsTests.pinned)
                // The default values make one budget, elasticsearch's (maxUnavailable: 1 over its one pod).
                let budgetsBefore = try budgets(lab)
                #expect(budgetsBefore == ["logging/elasticsearch-master-pdb": [1, 1, 0]], "\(budgetsBefore)")
                let esNode = try lab.kubectl("get pod elasticsearch-master-0 -n logging -o jsonpath={.spec.nodeName}").stdout

                // The plan: the upgrade in order, and nothing else (the releases are not touched).
                let minor = try plan("1.36.1")
                let shown = try lab.bootstrap(["plan", "-f", minor])
                #expect(shown.status == 0, "\(shown.all)")
                #expect(shown.stdout.contains("""
                      ~ cluster: upgrade 1.35.5 → 1.36.1 (etcd snapshot on cp-1 first)
                      ~ cp-1: kubeadm upgrade apply
                      ~ worker-1: drain, upgrade, uncordon (batch 1 of 2)
                      ~ worker-2: drain, upgrade, uncordon (batch 2 of 2)
                    """), "\(shown.all)")
                #expect(!shown.stdout.contains("addon ") && !shown.stdout.contains("manifest "), "\(shown.stdout)")

                let started = Date()
                let up = try lab.bootstrap(["apply", "-f", minor, "--auto-approve"])
                #expect(up.status == 0, "\(up.all)")
                print("AddonUpgradeTests: the 1.35.5 → 1.36.1 apply took \(Int(Date().timeIntervalSince(started)))s")

                // Every node Ready on v1.36.1 and schedulable, by the API server.
                let nodes = try UpgradeTests.nodes(lab)
                #expect(nodes.mapValues(\.kubelet) == ["cp-1": "v1.36.1", "worker-1": "v1.36.1", "worker-2": "v1.36.1"])
                #expect(nodes.values.allSatisfy { $0.ready && !$0.cordoned }, "\(nodes)")
                #expect(try lab.kubectl("get --raw /version").stdout.contains("v1.36.1"))

                // Every release still deployed at the same revision (an upgrade does not reinstall them), its pods
                // Ready; the app's too.
                let after = try releases(lab)
                #expect(after.mapValues(\.chart) == AddonsTests.pinned)
                for (name, r) in after {
                    #expect(r.revision == before[name]?.revision, "\(name): revision \(r.revision)")
                    let status = try json(helm(lab, "status \(name) -n \(r.namespace) -o json")) as? [String: Any]
                    #expect((status?["info"] as? [String: Any])?["status"] as? String == "deployed", "\(name)")
                }
                for namespace in Set(after.values.map(\.namespace)).union(["my-app"]).sorted() {
                    #expect(try unready(lab, namespace) == [], "pods not Ready in \(namespace)")
                }
                #expect(try lab.kubectl("get deployment my-app -n my-app -o jsonpath={.status.readyReplicas}").stdout == "3")

                // The drains went through the eviction API (no --disable-eviction, no --force), so the budget was
                // asked: elasticsearch's pod was evicted from its node and is healthy again elsewhere.
                let drains = lab.loggedCommands(host: "cp-1").filter { $0.contains(" drain ") }
                #expect(drains.count == 3, "\(drains)")
                #expect(drains.allSatisfy { !$0.contains("--disable-eviction") && !$0.contains("--force") }, "\(drains)")
                let log = (try? String(contentsOfFile: (lab.work as NSString).appendingPathComponent(".bootstrap/logs/cp-1.log"),
                                       encoding: .utf8)) ?? ""
                #expect(["worker-1", "worker-2"].contains(esNode), "\(esNode)")
                #expect(log.contains("evicting pod logging/elasticsearch-master-0"), "no eviction of elasticsearch in the drain of \(esNode)")
                let budgetsAfter = try budgets(lab)
                #expect(budgetsAfter == ["logging/elasticsearch-master-pdb": [1, 1, 0]], "\(budgetsAfter)")

                #expect(try UpgradeTests.cluster(lab)["kubernetesVersion"] as? String == "1.36.1")
                let done = try lab.bootstrap(["plan", "-f", minor, "--detailed-exitcode"])
                #expect(done.status == 0 && done.stdout.contains("No changes."), "\(done.all)")
            }
        }
    }
}
