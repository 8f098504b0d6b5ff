import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// Patch releases come from the hosts' package repository (issue 13): any patch of a supported minor passes
    /// validation; preflight asks each OS's package manager what the repository of the minor has.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct PackageRepositoryTests {
        @Test func aPatchTheRepositoryLacksFailsPreflightWithItsListAndChangesNothing() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                // apt on the control plane, dnf on the worker: each asks its own package manager.
                let lab = try Lab(hosts: 2, net: "127.0.115", extra: ["--os", "ubuntu-24.04,amazon-linux-2023"])
                defer { lab.down() }
                let text = lab.plan(workers: 1)
                    .replacingOccurrences(of: "name: worker-1, address: \(lab.address(2)), role: worker,",
                                          with: "name: worker-1, address: \(lab.address(2)), role: worker, user: ec2-user,")
                let plan = try lab.writePlan(text.replacingOccurrences(of: "\"1.34.1\"", with: "\"1.35.9\""))

                // validate accepts it: 1.35 is supported, which patches exist is the repository's business
                let validate = try lab.bootstrap(["validate", "-f", plan])
                #expect(validate.status == 0, "\(validate.all)")

                let r = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(r.status == 1, "\(r.all)")
                let has = "(it has 1.35.0, 1.35.1, 1.35.2, 1.35.3, 1.35.4, 1.35.5)"
                #expect(r.all.contains("cp-1: Kubernetes 1.35.9 is not in the package repository https://pkgs.k8s.io/core:/stable:/v1.35/deb/ \(has)"), "\(r.all)")
                #expect(r.all.contains("worker-1: Kubernetes 1.35.9 is not in the package repository https://pkgs.k8s.io/core:/stable:/v1.35/rpm/ \(has)"), "\(r.all)")
                #expect(r.all.contains("nothing was changed"), "\(r.all)")
                // Nothing installed, no repository configured, the hosts' package lists as they were.
                #expect(try lab.exec(1, "dpkg-query -W containerd kubeadm").status != 0)
                #expect(try lab.exec(1, "ls /etc/apt/sources.list.d/ /etc/apt/keyrings/ 2>/dev/null").stdout.contains("kubernetes") == false)
                #expect(try lab.exec(1, "apt-cache madison kubeadm").stdout.isEmpty)
                #expect(try lab.exec(2, "rpm -q containerd kubeadm").status != 0)
                #expect(try lab.exec(2, "test -e /etc/yum.repos.d/kubernetes.repo").status != 0)
                #expect(try lab.exec(1, "awk 'NR>1' /proc/swaps | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "0")
                #expect(((try? lab.state())?["hosts"] as? [String: Any] ?? [:]).isEmpty)

                // A patch it has goes through.
                let ok = try lab.bootstrap(["apply", "-f", lab.writePlan(text.replacingOccurrences(of: "\"1.34.1\"", with: "\"1.35.5\"")),
                                            "--auto-approve"])
                #expect(ok.status == 0, "\(ok.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
            }
        }
    }
}
