import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// A control plane that is gone (wiped) is replaced by a new host: its etcd member is removed first, from a
    /// control plane that stays, so that etcd ends with the plan's members only; and when the first control
    /// plane's API access fails, kubectl and Helm go through another one (issue 14).
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
    }
}
