import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// A cluster whose workers run Amazon Linux 2023 (dnf, rpm) and Debian 12 beside an Ubuntu 24.04 control plane
    /// (the other suites run Ubuntu 22.04): each host gets its own package manager's recipes.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct AmazonLinuxTests {
        @Test func amazonLinuxAndDebianWorkersJoinAnUbuntuControlPlaneAndArePurgedWithTheirOwnTools() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.90", extra: ["--os", "ubuntu-24.04,amazon-linux-2023,debian-12"])
                defer { lab.down() }
                #expect(try lab.exec(2, ". /etc/os-release; echo $ID $VERSION_ID").stdout == "amzn 2023\n")
                #expect(try lab.exec(3, ". /etc/os-release; echo $ID $VERSION_ID").stdout == "debian 12\n")
                // Amazon Linux images log in as ec2-user, Debian's as admin.
                let text = lab.plan(workers: 2)
                    .replacingOccurrences(of: "name: worker-1, address: \(lab.address(2)), role: worker,",
                                          with: "name: worker-1, address: \(lab.address(2)), role: worker, user: ec2-user,")
                    .replacingOccurrences(of: "name: worker-2, address: \(lab.address(3)), role: worker,",
                                          with: "name: worker-2, address: \(lab.address(3)), role: worker, user: admin,")
                #expect(text.contains("user: ec2-user") && text.contains("user: admin"))
                let plan = try lab.writePlan(text)

                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true, "worker-2": true])
                let worker = try lab.journal(2)
                // One transaction: containerd with the Kubernetes packages.
                let dnfInstalls = worker.filter { $0.hasPrefix("0 dnf ") && $0.contains(" install ") }
                #expect(dnfInstalls.count == 1 && dnfInstalls[0].contains(" containerd kubelet-1.34.1 kubeadm-1.34.1 kubectl-1.34.1"),
                        "\(worker)")
                #expect(!worker.contains { $0.contains(" apt-get ") || $0.contains(" dpkg") })
                #expect(try lab.exec(2, "rpm -q kubeadm").status == 0)
                #expect(try lab.exec(2, "test -f /etc/yum.repos.d/kubernetes.repo").status == 0)
                #expect(try lab.exec(3, "dpkg-query -W -f='${Version}' kubeadm").stdout == "1.34.1-1.1")
                for i in [1, 3] {
                    let journal = try lab.journal(i)
                    #expect(journal.contains { $0.hasPrefix("0 apt-get ") && $0.contains("kubeadm=1.34.1-1.1") }, "\(journal)")
                    // One index update of the host's own lists, one transaction (preflight's read of the
                    // repository's releases goes to lists in a temporary directory).
                    let apt = journal.filter { $0.hasPrefix("0 apt-get ") }
                    #expect(apt.filter { $0.contains(" update") && !$0.contains("Dir::State::Lists=") }.count == 1, "\(journal)")
                    let installs = apt.filter { $0.contains(" install ") }
                    #expect(installs.count == 1 && installs[0].contains(" containerd kubelet=1.34.1-1.1"), "\(journal)")
                    #expect(!journal.contains { $0.contains(" dnf ") || $0.hasPrefix("0 dnf ") })
                }

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
                #expect(try lab.exec(3, "dpkg-query -W -f='${Version}' kubeadm").stdout == "")
                #expect(try lab.exec(3, "test -e /etc/apt/sources.list.d/kubernetes.list").status != 0)
            }
        }
    }
}
