import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// A control plane that is gone (wiped) is replaced by a new host: its etcd member is removed first, from a
    /// control plane that stays, so that etcd ends with the plan's members only; and when the first control
    /// plane's API access fails, kubectl and Helm go through another one; the first control plane itself is
    /// replaced when the endpoint does not depend on it (issue 14).
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct ControlPlaneReplacementTests {
        @Test func aWipedControlPlaneIsReplacedAndLeavesEtcd() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 4, net: "127.0.131")
                defer { lab.down() }
                let three = lab.plan(controlPlanes: 3, workers: 0)
                let plan = try lab.writePlan(three)
                let apply = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(apply.status == 0, "\(apply.all)")
                guard apply.status == 0 else { return }

                // cp-3's machine is lost: wiped, booted again as a fresh machine. The plan replaces it by cp-4.
                try lab.lab(["destroy-host", "lab-3"])
                let replaced = three.replacingOccurrences(of: "{ name: cp-3, address: \(lab.address(3))",
                                                          with: "{ name: cp-4, address: \(lab.address(4))")
                #expect(replaced != three)
                _ = try lab.writePlan(replaced)
                let again = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(again.status == 0, "\(again.all)")

                let out = try lab.exec(1, "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key member list")
                let members = out.stdout.split(separator: "\n").map { $0.components(separatedBy: ", ") }
                #expect(members.map { $0.count > 2 ? "\($0[2]) \($0[1])" : "?" }.sorted() == ["cp-1 started", "cp-2 started", "cp-4 started"], "\(out.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "cp-2": true, "cp-4": true])
                // The member left etcd before the node was drained and deleted.
                let cmds = lab.loggedCommands(host: "cp-1")
                let remove = cmds.firstIndex { $0.contains("member remove") }
                let drain = cmds.firstIndex { $0.contains("drain cp-3") }
                #expect(remove != nil && drain != nil && remove! < drain!, "\(cmds.suffix(20))")
                #expect(try lab.state()["hosts"].map { ($0 as? [String: Any])?["cp-3"] == nil } == true)
                let noop = try lab.bootstrap(["plan", "-f", plan, "--detailed-exitcode"])
                #expect(noop.status == 0, "\(noop.all)")

                // cp-1's API access is broken (its admin kubeconfig gone): kubectl and Helm go through cp-2.
                #expect(try lab.exec(1, "mv /etc/kubernetes/admin.conf /root/admin.conf.aside").status == 0)
                try FileManager.default.createDirectory(atPath: (lab.work as NSString).appendingPathComponent("apps"),
                                                        withIntermediateDirectories: true)
                _ = try lab.writePlan(try String(contentsOfFile: packageRoot.appendingPathComponent("Plans/apps/my-app.yaml").path,
                                                 encoding: .utf8), file: "apps/my-app.yaml")
                _ = try lab.writePlan(replaced + "  addons:\n    metricsServer: { enabled: true }\n  manifests: [ apps/my-app.yaml ]\n")
                let via2 = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(via2.status == 0, "\(via2.all)")
                let on2 = lab.loggedCommands(host: "cp-2").joined(separator: "\n")
                #expect(on2.contains("helm upgrade --install metrics-server") && on2.contains("apply --server-side"), "\(on2.suffix(3000))")
                let on1 = lab.loggedCommands(host: "cp-1").joined(separator: "\n")
                #expect(!on1.contains("helm upgrade --install metrics-server") && !on1.contains("apply --server-side"))
                #expect(try lab.exec(2, "kubectl --kubeconfig /etc/kubernetes/admin.conf get deployment my-app -n my-app").status == 0)
                #expect(try lab.exec(2, "/usr/local/bin/helm --kubeconfig /etc/kubernetes/admin.conf status metrics-server -n kube-system").status == 0)
            }
        }

        /// The first control plane (it ran `kubeadm init`) is wiped and replaced by a new host listed first, in a
        /// cluster whose endpoint is the lab's load balancer: the new host joins (nobody runs init again), cp-1's
        /// member leaves etcd from cp-2 before its node is drained and deleted, Helm moves to cp-2, and the
        /// worker keeps its API server throughout.
        @Test func theFirstControlPlaneIsReplaced() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                // lab-1..3: cp-1..3, lab-4: worker-1, lab-5: the new control plane.
                let lab = try Lab(hosts: 5, net: "127.0.132")
                defer { lab.down() }
                let lb = try lab.lab(["lb", "up"])
                #expect(lb.status == 0, "\(lb.all)")
                let original = lab.plan(controlPlanes: 3, workers: 1, endpoint: "\(lab.net).250:6443")
                let plan = try lab.writePlan(original)
                let apply = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(apply.status == 0, "\(apply.all)")
                guard apply.status == 0 else { return }
                func kubeletLog() throws -> String { try lab.exec(4, "cat /var/log/labnode/kubelet.log").stdout }
                let logged = try kubeletLog().count
                func workerJoined() throws -> String? {
                    let hosts = try lab.state()["hosts"] as? [String: Any]
                    let steps = (hosts?["worker-1"] as? [String: Any])?["steps"] as? [String: Any]
                    return (steps?["join-worker"] as? [String: Any])?["finishedAt"] as? String
                }
                let joined = try workerJoined()

                // cp-1's machine is lost. The plan drops it and lists cp-4 first.
                try lab.lab(["destroy-host", "lab-1"])
                let replaced = original.replacingOccurrences(
                    of: "    - { name: cp-1, address: \(lab.address(1)), role: control-plane }\n",
                    with: "    - { name: cp-4, address: \(lab.address(5)), role: control-plane }\n")
                #expect(replaced != original)
                _ = try lab.writePlan(replaced)
                let shown = try lab.bootstrap(["plan", "-f", plan])
                #expect(shown.status == 0, "\(shown.all)")
                #expect(shown.stdout.contains("steps: prepare, kubernetes-repo, kubernetes-packages, containerd, images, join-control-plane, node-config"), "\(shown.stdout)")
                #expect(!shown.stdout.contains(" init"), "\(shown.stdout)")
                #expect(shown.stdout.contains("helm: cp-1, where it was installed, leaves; installed on cp-2"), "\(shown.stdout)")

                let again = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(again.status == 0, "\(again.all)")
                let out = try lab.exec(2, "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key member list")
                let members = out.stdout.split(separator: "\n").map { $0.components(separatedBy: ", ") }
                #expect(members.map { $0.count > 2 ? "\($0[2]) \($0[1])" : "?" }.sorted() == ["cp-2 started", "cp-3 started", "cp-4 started"], "\(out.all)")
                #expect(try lab.nodeReadiness(via: 2) == ["cp-2": true, "cp-3": true, "cp-4": true, "worker-1": true])

                // cp-2 served the cluster: cp-1's member removed there before its node was drained and deleted,
                // Helm installed there; nothing went through cp-1 (a fresh machine now) but its reset.
                let on2 = lab.loggedCommands(host: "cp-2")
                let remove = on2.firstIndex { $0.contains("member remove") }
                let drain = on2.firstIndex { $0.contains("drain cp-1") }
                let delete = on2.firstIndex { $0.contains("delete node cp-1") }
                #expect(remove != nil && drain != nil && delete != nil && remove! < drain! && drain! < delete!, "\(on2.suffix(30))")
                #expect(on2.contains { $0.contains("get.helm.sh") }, "\(on2.suffix(30))")
                #expect(try lab.exec(2, "/usr/local/bin/helm version --short").status == 0)
                // The worker never lost its API server (the endpoint, which cp-2 and cp-3 kept serving): at most the
                // request in flight to cp-1 when it died failed, the next one went through; it is Ready and never
                // joined again.
                #expect(try lab.exec(4, "grep -c 'server: https://\(lab.net).250:6443' /etc/kubernetes/kubelet.conf").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
                let since = String(try kubeletLog().dropFirst(logged))
                let failed = since.components(separatedBy: "Unable to register node with API server").count - 1
                let lastFailure = since.range(of: "Unable to register node", options: .backwards)
                let lastSuccess = since.range(of: "API server reachable again", options: .backwards)
                #expect(failed <= 1, "\(since)")
                #expect(lastFailure == nil || (lastSuccess.map { $0.lowerBound > lastFailure!.lowerBound } ?? false), "\(since)")
                let joinedAfter = try workerJoined()
                #expect(joined != nil && joinedAfter == joined)
                let state = try lab.state()
                let cluster = state["cluster"] as? [String: Any]
                #expect(cluster?["initializedOn"] as? String == "cp-2")
                #expect((state["hosts"] as? [String: Any])?["cp-1"] == nil)
                let noop = try lab.bootstrap(["plan", "-f", plan, "--detailed-exitcode"])
                #expect(noop.status == 0, "\(noop.all)")
            }
        }
    }
}
