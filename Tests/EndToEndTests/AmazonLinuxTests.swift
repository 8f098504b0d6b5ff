import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// A cluster whose worker runs Amazon Linux 2023 (dnf, rpm) beside an Ubuntu control plane.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct AmazonLinuxTests {
        @Test func anAmazonLinuxWorkerJoinsAnUbuntuControlPlaneAndIsPurgedWithDnf() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.90", extra: ["--os", "ubuntu-24.04,amazon-linux-2023"])
                defer { lab.down() }
                #expect(try lab.exec(2, ". /etc/os-release; echo $ID $VERSION_ID").stdout == "amzn 2023\n")
                // Amazon Linux images log in as ec2-user.
                let text = lab.plan(workers: 1).replacingOccurrences(of: "role: worker,", with: "role: worker, user: ec2-user,")
                let plan = try lab.writePlan(text)

                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                let worker = try lab.journal(2)
                #expect(worker.contains { $0.hasPrefix("0 dnf ") && $0.contains(" install -y -q containerd") }, "\(worker)")
                #expect(worker.contains { $0.hasPrefix("0 dnf ") && $0.contains("kubelet-1.34.1 kubeadm-1.34.1 kubectl-1.34.1") })
                #expect(!worker.contains { $0.contains(" apt-get ") || $0.contains(" dpkg") })
                #expect(try lab.exec(2, "rpm -q kubeadm").status == 0)
                #expect(try lab.exec(2, "test -f /etc/yum.repos.d/kubernetes.repo").status == 0)
                #expect(try lab.journal(1).contains { $0.contains("apt-get") && $0.contains("kubeadm=1.34.1-1.1") })

                // Again: the rpm versions read back as the plan's, so nothing changes.
                let second = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(second.status == 0, "\(second.all)")
                #expect(second.stdout.contains("No changes."), "\(second.all)")

                // Destroy --purge removes the packages and the repository with dnf.
                let destroy = try lab.bootstrap(["destroy", "-f", plan, "--auto-approve", "--purge"])
                #expect(destroy.status == 0, "\(destroy.all)")
                #expect(try lab.exec(2, "rpm -q kubeadm").status != 0)
                #expect(try lab.exec(2, "test -e /etc/yum.repos.d/kubernetes.repo").status != 0)
                #expect(try lab.exec(2, "test -e /etc/kubernetes/kubelet.conf").status != 0)
                #expect(try lab.journal(2).contains { $0.hasPrefix("0 dnf ") && $0.contains(" remove -y -q kubelet kubeadm kubectl") })
            }
        }
    }
}
