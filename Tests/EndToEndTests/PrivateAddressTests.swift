import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// A control plane reached by a DNS name (an alias in ~/.ssh/config): kubeadm, the kubelet and the joins
    /// get its cluster address from its facts, never the name (the lab's kubeadm refuses a name, as kubeadm does).
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct PrivateAddressTests {
        @Test func aControlPlaneReachedByADNSName() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.140")
                defer { lab.down() }
                let name = "cp-1.e2e.internal"
                let plan = try lab.writePlan(lab.plan(workers: 1)
                    .replacingOccurrences(of: "address: \(lab.address(1)),", with: "address: \(name),")
                    .replacingOccurrences(of: "address: \(lab.address(2)),",
                                          with: "address: \(lab.address(2)), privateAddress: \(lab.address(2)),"))
                let home = (lab.work as NSString).appendingPathComponent("home")
                try FileManager.default.createDirectory(atPath: home + "/.ssh", withIntermediateDirectories: true)
                try "Host \(name)\n    HostName \(lab.address(1))\n"
                    .write(toFile: home + "/.ssh/config", atomically: true, encoding: .utf8)
                let env = ["HOME": home, "NO_COLOR": "1", "SSH_AUTH_SOCK": ""]

                let apply = try runProgram(E2E.binary, ["apply", "-f", plan, "--auto-approve"], cwd: lab.work, env: env)
                #expect(apply.status == 0, "\(apply.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                let hosts = try lab.state()["hosts"] as? [String: [String: Any]] ?? [:]
                #expect(hosts["cp-1"]?["address"] as? String == name)
                #expect(hosts["cp-1"]?["privateAddress"] as? String == lab.address(1), "\(hosts)")
                #expect(hosts["worker-1"]?["privateAddress"] as? String == lab.address(2))
                let initConfig = try lab.exec(1, "cat /var/lib/bootstrap/kubeadm-init.yaml").stdout
                #expect(initConfig.contains("advertiseAddress: \(lab.address(1))"))
                #expect(initConfig.contains("value: \(lab.address(1))"))  // the kubelet's node-ip
                let joinConfig = try lab.exec(2, "cat /var/lib/bootstrap/kubeadm-join.yaml").stdout
                #expect(joinConfig.contains("apiServerEndpoint: \(lab.address(1)):6443"), "\(joinConfig)")

                // Nothing to do afterwards; a new privateAddress is a replace.
                let again = try runProgram(E2E.binary, ["plan", "-f", plan, "--detailed-exitcode"], cwd: lab.work, env: env)
                #expect(again.status == 0, "\(again.all)")
                let moved = try lab.writePlan(String(contentsOfFile: plan, encoding: .utf8)
                    .replacingOccurrences(of: "privateAddress: \(lab.address(2))", with: "privateAddress: \(lab.address(3))"),
                    file: "moved.yaml")
                let replan = try runProgram(E2E.binary, ["plan", "-f", moved, "--state", lab.statePath], cwd: lab.work, env: env)
                #expect(replan.stdout.contains("-/+"), "\(replan.all)")
                #expect(replan.stdout.contains("privateAddress changed \(lab.address(2)) → \(lab.address(3)) forces replacement"),
                        "\(replan.all)")
            }
        }
    }
}
