import BootstrapCore
import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// Kubernetes upgrades through the plan (issue 13): the user edits the version and applies.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct UpgradeTests {
        static func wait(_ timeout: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if try condition() { return true }
                Thread.sleep(forTimeInterval: 0.2)
            }
            return false
        }

        /// Each node's kubelet version and whether it is unschedulable (cordoned), from the API server.
        static func nodes(_ lab: Lab) throws -> [String: (kubelet: String, cordoned: Bool, ready: Bool)] {
            let out = try lab.kubectl("get nodes -o json")
            guard out.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any],
                  let items = obj["items"] as? [[String: Any]] else { return [:] }
            var r: [String: (String, Bool, Bool)] = [:]
            for item in items {
                let name = (item["metadata"] as? [String: Any])?["name"] as? String ?? "?"
                let status = item["status"] as? [String: Any]
                let kubelet = (status?["nodeInfo"] as? [String: Any])?["kubeletVersion"] as? String ?? "?"
                let cordoned = (item["spec"] as? [String: Any])?["unschedulable"] as? Bool ?? false
                let ready = ((status?["conditions"] as? [[String: Any]]) ?? []).contains {
                    $0["type"] as? String == "Ready" && $0["status"] as? String == "True"
                }
                r[name] = (kubelet, cordoned, ready)
            }
            return r
        }

        static func cluster(_ lab: Lab) throws -> [String: Any] { try lab.state()["cluster"] as? [String: Any] ?? [:] }

        static func applyCount(_ lab: Lab, _ version: String) throws -> Int {
            try lab.journal(1).filter { $0.contains("kubeadm upgrade apply v\(version)") }.count
        }

        @Test func patchThenMinorUpgradeEachResumedAfterKill9() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.110")
                defer { lab.down() }
                let text = lab.plan(workers: 2)
                func plan(_ version: String) throws -> String {
                    try lab.writePlan(text.replacingOccurrences(of: "\"1.34.1\"", with: "\"\(version)\""))
                }
                let create = try lab.bootstrap(["apply", "-f", plan("1.35.2"), "--auto-approve"])
                #expect(create.status == 0, "\(create.all)")

                // A patch upgrade: every node, the first control plane with `kubeadm upgrade apply`.
                let patchPlan = try lab.bootstrap(["plan", "-f", plan("1.35.5")])
                #expect(patchPlan.status == 0, "\(patchPlan.all)")
                #expect(patchPlan.stdout.contains("~ cluster: upgrade 1.35.2 → 1.35.5 (etcd snapshot on cp-1 first)"), "\(patchPlan.all)")
                #expect(patchPlan.stdout.contains("~ cp-1: kubeadm upgrade apply"), "\(patchPlan.all)")
                #expect(patchPlan.stdout.contains("~ worker-2: drain, upgrade, uncordon (batch 2 of 2)"), "\(patchPlan.all)")
                // Killed while worker-1, drained, gets its new kubelet (held there by a hanging apt-get): the
                // re-run uncordons it and finishes.
                try lab.lab(["fault", "lab-2", "hang", "apt-get", "kubelet=1.35.5"])
                let killed = try lab.startBootstrap(["apply", "-f", plan("1.35.5"), "--auto-approve"])
                lab.waitForCommand(host: "worker-1", timeout: 120) { $0.contains("kubelet=1.35.5") }
                kill(killed.processIdentifier, SIGKILL)
                killed.waitUntilExit()
                #expect(try Self.nodes(lab)["worker-1"]?.cordoned == true)
                // The hung install outlived its connection (as a real one would); it ends before the re-run.
                try lab.lab(["fault", "lab-2", "clear"])
                _ = try lab.exec(2, "pkill -f 'labnode apt-get'")
                let patch = try lab.bootstrap(["apply", "-f", plan("1.35.5"), "--auto-approve"])
                #expect(patch.status == 0, "\(patch.all)")
                var nodes = try Self.nodes(lab)
                #expect(nodes.mapValues(\.kubelet) == ["cp-1": "v1.35.5", "worker-1": "v1.35.5", "worker-2": "v1.35.5"])
                #expect(nodes.values.allSatisfy { !$0.cordoned && $0.ready })
                var cluster = try Self.cluster(lab)
                #expect(cluster["kubernetesVersion"] as? String == "1.35.5")
                // The etcd snapshot taken first, recorded and kept on the first control plane.
                let upgrade = try #require(cluster["upgrade"] as? [String: Any])
                let snapshot = try #require(upgrade["snapshot"] as? [String: Any])
                let path = try #require(snapshot["path"] as? String)
                #expect(snapshot["host"] as? String == "cp-1")
                let sum = try lab.exec(1, "sha256sum \(path) | cut -d' ' -f1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(sum == snapshot["sha256"] as? String && sum.count == 64)
                #expect((snapshot["size"] as? Int ?? 0) > 0)
                #expect(try lab.exec(1, "etcdutl snapshot status \(path) -w json").status == 0)
                #expect(try Self.applyCount(lab, "1.35.5") == 1)

                // 1.35 → 1.36, killed once `kubeadm upgrade apply` has started; the re-run finishes the job.
                let minor = try plan("1.36.1")
                let json = try lab.bootstrap(["plan", "-f", minor, "--json"])
                let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
                let hosts = ((doc?["upgrade"] as? [String: Any])?["hosts"] as? [[String: Any]]) ?? []
                #expect(hosts.map { $0["name"] as? String ?? "" } == ["cp-1", "worker-1", "worker-2"], "\(json.all)")
                #expect(hosts.map { $0["kind"] as? String ?? "" } == ["apply", "worker", "worker"])
                let p = try lab.startBootstrap(["apply", "-f", minor, "--auto-approve"])
                lab.waitForCommand(host: "cp-1", timeout: 120) { $0.contains("kubeadm upgrade apply v1.36.1") }
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                // Killed before its apply was recorded: the state says so, and the re-run finds it done on the host.
                #expect((try lab.stateAsRead()["cluster"] as? [String: Any]).flatMap { $0["upgrade"] as? [String: Any] }?["applied"] as? Bool == false)
                let rerun = try lab.bootstrap(["apply", "-f", minor, "--auto-approve"])
                #expect(rerun.status == 0, "\(rerun.all)")
                let log = (try? String(contentsOfFile: (lab.work as NSString).appendingPathComponent(".bootstrap/logs/cp-1.log"),
                                       encoding: .utf8)) ?? ""
                #expect(log.contains("\(NodeRecipes.alreadyDone) (the control plane runs v1.36.1)"))
                nodes = try Self.nodes(lab)
                #expect(nodes.mapValues(\.kubelet) == ["cp-1": "v1.36.1", "worker-1": "v1.36.1", "worker-2": "v1.36.1"])
                #expect(nodes.values.allSatisfy { !$0.cordoned && $0.ready })
                let upgradeCalls = try lab.journal(1).filter { $0.contains("kubeadm upgrade") }
                #expect(try Self.applyCount(lab, "1.36.1") == 1, "\(upgradeCalls)")
                #expect(try lab.kubectl("get --raw /version").stdout.contains("v1.36.1"))
                cluster = try Self.cluster(lab)
                #expect(cluster["kubernetesVersion"] as? String == "1.36.1")
                #expect((cluster["upgrade"] as? [String: Any])?["finishedAt"] != nil)
                let done = try lab.bootstrap(["plan", "-f", minor, "--detailed-exitcode"])
                #expect(done.status == 0 && done.stdout.contains("No changes."), "\(done.all)")

                // Two minors at once, or back down, are refused before anything runs.
                let down = try lab.bootstrap(["plan", "-f", plan("1.35.5")])
                #expect(down.status == 1 && down.all.contains("is a downgrade"), "\(down.all)")

                // containerd pinned (it was the OS's): node by node, each drained, restarted and uncordoned.
                let pkg = try lab.exec(1, "dpkg-query -W -f='${Version}' containerd").stdout
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                let pinned = try lab.writePlan(text.replacingOccurrences(of: "\"1.34.1\"", with: "\"1.36.1\"")
                    + "  containerRuntime:\n    containerd: { version: \"\(pkg)\" }\n")
                let drainsBefore = lab.loggedCommands(host: "cp-1").filter { $0.contains(" drain ") }.count
                let roll = try lab.bootstrap(["apply", "-f", pinned, "--auto-approve"])
                #expect(roll.status == 0, "\(roll.all)")
                #expect(roll.all.contains("drain, upgrade, restart, uncordon (group 3 of 3)"), "\(roll.all)")
                let drains = lab.loggedCommands(host: "cp-1").filter { $0.contains(" drain ") }.dropFirst(drainsBefore)
                #expect(drains.map { $0.split(separator: " ").dropFirst(4).first ?? "" } == ["cp-1", "worker-1", "worker-2"],
                        "\(drains)")
                nodes = try Self.nodes(lab)
                #expect(nodes.values.allSatisfy { !$0.cordoned && $0.ready })
            }
        }

        @Test func aDrainBlockedByABudgetStopsTheRunAndLeavesTheNodeSchedulable() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.111")
                defer { lab.down() }
                let text = lab.plan(workers: 1) + "  upgrade: { drainTimeout: 30 }\n"
                func plan(_ version: String) throws -> String {
                    try lab.writePlan(text.replacingOccurrences(of: "\"1.34.1\"", with: "\"\(version)\""))
                }
                let create = try lab.bootstrap(["apply", "-f", plan("1.35.5"), "--auto-approve"])
                #expect(create.status == 0, "\(create.all)")
                // One replica and a budget that allows no disruption: its pod cannot leave worker-1.
                let app = try lab.exec(1, """
                    cat <<'EOF' | kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -
                    apiVersion: v1
                    kind: Namespace
                    metadata: {name: shop}
                    ---
                    apiVersion: apps/v1
                    kind: Deployment
                    metadata: {name: web, namespace: shop}
                    spec:
                      replicas: 1
                      selector: {matchLabels: {app: web}}
                      template:
                        metadata: {labels: {app: web}}
                        spec: {containers: [{name: web, image: nginx:1.27}]}
                    ---
                    apiVersion: policy/v1
                    kind: PodDisruptionBudget
                    metadata: {name: web, namespace: shop}
                    spec:
                      minAvailable: 1
                      selector: {matchLabels: {app: web}}
                    EOF
                    """)
                #expect(app.status == 0, "\(app.all)")
                #expect(Self.wait(60) { (try? lab.kubectl("get pods -n shop -o wide").stdout.contains("worker-1")) ?? false })

                let blocked = try lab.bootstrap(["apply", "-f", plan("1.36.1"), "--auto-approve"])
                #expect(blocked.status == 1, "\(blocked.all)")
                #expect(blocked.all.contains("drain blocked by a PodDisruptionBudget"), "\(blocked.all)")
                #expect(blocked.all.contains("shop/web-"), "\(blocked.all)")
                #expect(blocked.all.contains("worker-1 was uncordoned"), "\(blocked.all)")
                var nodes = try Self.nodes(lab)
                #expect(nodes["worker-1"]?.cordoned == false)
                #expect(nodes["worker-1"]?.kubelet == "v1.35.5")
                #expect(nodes["cp-1"]?.kubelet == "v1.36.1")
                #expect(try Self.cluster(lab)["kubernetesVersion"] as? String == "1.35.5")
                let remaining = try lab.bootstrap(["plan", "-f", plan("1.36.1")])
                #expect(remaining.stdout.contains("~ worker-1: drain, upgrade, uncordon (batch 1 of 1)"), "\(remaining.all)")
                #expect(!remaining.stdout.contains("~ cp-1: kubeadm upgrade apply"), "\(remaining.all)")

                // The budget relaxed: the next run resumes at worker-1, without a second `upgrade apply`.
                #expect(try lab.kubectl("delete pdb web -n shop").status == 0)
                let rerun = try lab.bootstrap(["apply", "-f", plan("1.36.1"), "--auto-approve"])
                #expect(rerun.status == 0, "\(rerun.all)")
                nodes = try Self.nodes(lab)
                #expect(nodes.mapValues(\.kubelet) == ["cp-1": "v1.36.1", "worker-1": "v1.36.1"])
                #expect(nodes.values.allSatisfy { !$0.cordoned })
                #expect(try Self.applyCount(lab, "1.36.1") == 1)
                #expect(try Self.cluster(lab)["kubernetesVersion"] as? String == "1.36.1")
            }
        }
    
        /// Three control planes and three workers: `kubeadm upgrade apply` on the first, `kubeadm upgrade node` on
        /// the others, one at a time (never two control planes at once), then the workers one batch of one at a time.
        @Test func threeControlPlanesOneMinorUp() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 6, net: "127.0.112")
                defer { lab.down() }
                let text = lab.plan(controlPlanes: 3, workers: 3)
                func plan(_ version: String) throws -> String {
                    try lab.writePlan(text.replacingOccurrences(of: "\"1.34.1\"", with: "\"\(version)\""))
                }
                let create = try lab.bootstrap(["apply", "-f", plan("1.34.7"), "--auto-approve"])
                #expect(create.status == 0, "\(create.all)")
                let shown = try lab.bootstrap(["plan", "-f", plan("1.35.5")])
                #expect(shown.stdout.contains("""
                      ~ cluster: upgrade 1.34.7 → 1.35.5 (etcd snapshot on cp-1 first)
                      ~ cp-1: kubeadm upgrade apply
                      ~ cp-2: kubeadm upgrade node
                      ~ cp-3: kubeadm upgrade node
                      ~ worker-1: drain, upgrade, uncordon (batch 1 of 3)
                      ~ worker-2: drain, upgrade, uncordon (batch 2 of 3)
                      ~ worker-3: drain, upgrade, uncordon (batch 3 of 3)
                    """), "\(shown.all)")
                let up = try lab.bootstrap(["apply", "-f", plan("1.35.5"), "--auto-approve", "--json"])
                #expect(up.status == 0, "\(up.all)")
                let nodes = try Self.nodes(lab)
                #expect(nodes.mapValues(\.kubelet) == ["cp-1": "v1.35.5", "cp-2": "v1.35.5", "cp-3": "v1.35.5",
                                                    "worker-1": "v1.35.5", "worker-2": "v1.35.5", "worker-3": "v1.35.5"])
                #expect(nodes.values.allSatisfy { !$0.cordoned && $0.ready })
                #expect(try Self.applyCount(lab, "1.35.5") == 1)
                for i in 2...3 {
                    let calls = try lab.journal(i).filter { $0.contains("kubeadm upgrade") }
                    #expect(calls.count == 1 && calls.first?.hasPrefix("0 kubeadm upgrade node") == true, "\(calls)")
                    #expect(try lab.exec(i, "grep -c 'kube-apiserver:v1.35.5' /etc/kubernetes/manifests/kube-apiserver.yaml").stdout
                        .hasPrefix("1"))
                }
                // One control plane at a time: each one's upgrade starts after the previous one finished.
                let events = up.stdout.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                func index(_ host: String, _ event: String, last: Bool) -> Int? {
                    let match = { (e: [String: Any]) in
                        e["host"] as? String == host && e["step"] as? String == "upgrade" && e["event"] as? String == event
                    }
                    return last ? events.lastIndex(where: match) : events.firstIndex(where: match)
                }
                for (a, b) in [("cp-1", "cp-2"), ("cp-2", "cp-3"), ("cp-3", "worker-1"), ("worker-1", "worker-2"), ("worker-2", "worker-3")] {
                    let done = try #require(index(a, "step-finished", last: true), "\(up.stdout)")
                    let start = try #require(index(b, "step-started", last: false), "\(up.stdout)")
                    #expect(done < start, "\(a) then \(b)")
                }
                #expect(try Self.cluster(lab)["kubernetesVersion"] as? String == "1.35.5")
            }
        }
}
}
