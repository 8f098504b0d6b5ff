import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// `~/.ssh/config` as the only source of SSH settings: user, key, known hosts, host key policy, and a
    /// ProxyJump through a lab host that is not in the plan.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct SSHConfigE2ETests {
        @Test func proxyJumpThroughALabHostFromSSHConfig() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.77")
                defer { lab.down() }
                // A plan with no ssh section at all: everything comes from HOME/.ssh/config.
                let plan = try lab.writePlan("""
                    apiVersion: bootstrap.k8s.lab/v1alpha1
                    kind: Cluster
                    metadata:
                      name: e2e
                    spec:
                      kubernetes:
                        version: "1.34.1"
                      network:
                        cni: flannel
                      hosts:
                        - { name: cp-1, address: \(lab.address(1)), role: control-plane }
                        - { name: worker-1, address: \(lab.address(2)), role: worker }
                    """)
                let home = (lab.work as NSString).appendingPathComponent("home")
                try FileManager.default.createDirectory(atPath: home + "/.ssh", withIntermediateDirectories: true)
                try """
                    # lab-3 is the bastion; the cluster's hosts are reached only through it.
                    Host \(lab.net).* !\(lab.address(3))
                        ProxyJump jump
                    Host jump
                        HostName \(lab.address(3))
                    Host *
                        User ubuntu
                        IdentityFile \(lab.dir)/id_ed25519
                        UserKnownHostsFile \(lab.dir)/known_hosts
                        StrictHostKeyChecking yes
                    """.write(toFile: home + "/.ssh/config", atomically: true, encoding: .utf8)
                let env = ["HOME": home, "NO_COLOR": "1", "SSH_AUTH_SOCK": ""]

                // validate --show-defaults says where each value comes from.
                let shown = try runProgram(E2E.binary, ["validate", "-f", plan, "--show-defaults"], cwd: lab.work, env: env)
                #expect(shown.status == 0, "\(shown.all)")
                let rows = shown.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
                #expect(rows.contains("# address: \(lab.address(1)) <- plan spec.hosts[0].address"), "\(shown.stdout)")
                #expect(rows.contains("# bastion: ubuntu@\(lab.address(3)):22 key \(lab.dir)/id_ed25519 <- ~/.ssh/config:3"),
                        "\(shown.stdout)")
                #expect(rows.contains("# user: ubuntu <- ~/.ssh/config:7"), "\(shown.stdout)")
                #expect(rows.contains("# hostKeyPolicy: strict <- ~/.ssh/config:10"), "\(shown.stdout)")
                #expect(rows.contains("# port: 22 <- default"), "\(shown.stdout)")

                let apply = try runProgram(E2E.binary, ["apply", "-f", plan, "--auto-approve"], cwd: lab.work, env: env)
                #expect(apply.status == 0, "\(apply.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                // The bastion's sshd accepted the logins (lab-3 is in no plan), and forwarded to both hosts.
                let log = (try? String(contentsOfFile: "\(lab.dir)/hosts/lab-3/sshd.log", encoding: .utf8)) ?? ""
                #expect(log.contains("Accepted publickey for ubuntu"), "lab-3's sshd log: \(log.suffix(2000))")

            }
        }
    }
}
