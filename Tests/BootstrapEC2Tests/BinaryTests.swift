import BootstrapCore
import BootstrapTestSupport
import Foundation
import Testing
@testable import BootstrapEC2

/// The built `bootstrap` binary against moto_server: `plan` finds its hosts with DescribeInstances.
@Suite(.enabled(if: Moto.shouldRun, "moto_server not found: run scripts/test-tools (required under CI)"))
struct BinaryTests {
    static var binary: String {
        ProcessInfo.processInfo.environment["BOOTSTRAP_BIN"] ?? repoRoot.appendingPathComponent(".build/debug/bootstrap").path
    }

    @Test func planFindsTheRunningTaggedInstancesAndNeedsCredentials() async throws {
        let server = try await LocalServer.moto()
        do {
            let ec2 = EC2Client(region: "us-east-1", credentials: testCredentials, endpoint: server.endpoint,
                                retry: RetryPolicy(maxAttempts: 3, base: .milliseconds(5), cap: .milliseconds(20)))
            let vpc = try await ec2.createVPC("127.87.0.0/16")
            let subnet = try await ec2.createSubnet(vpc: vpc, cidr: "127.87.1.0/24")
            let sg = try await ec2.createSecurityGroup(vpc: vpc, name: "cluster")
            let cp = try await ec2.runInstances(subnet: subnet, groups: [sg],
                                                tags: ["Name": "cp-1", "cluster": "bin", "role": "control-plane"],
                                                privateIp: "127.87.1.10")
            let w1 = try await ec2.runInstances(subnet: subnet, groups: [sg], tags: ["Name": "w-1", "cluster": "bin", "role": "worker"],
                                                privateIp: "127.87.1.21")
            let w2 = try await ec2.runInstances(subnet: subnet, groups: [sg], tags: ["Name": "w-2", "cluster": "bin", "role": "worker"],
                                                privateIp: "127.87.1.22")
            _ = try await ec2.runInstances(subnet: subnet, groups: [sg], tags: ["Name": "other", "cluster": "x", "role": "worker"])
            try await ec2.stopInstances(w2)

            let dir = NSTemporaryDirectory() + "bootstrap-ec2-bin-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir + "/home", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try """
                apiVersion: bootstrap.k8s.lab/v1alpha1
                kind: Cluster
                metadata: { name: bin }
                spec:
                  kubernetes: { version: "1.34.1" }
                  provider:
                    ec2:
                      region: us-east-1
                      endpoint: \(server.endpoint.absoluteString)
                      hosts:
                        - { role: control-plane, tags: { cluster: bin, role: control-plane } }
                        - { role: worker, tags: { cluster: bin, role: worker } }
                """.write(toFile: dir + "/plan.yaml", atomically: true, encoding: .utf8)
            var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }
            env["HOME"] = dir + "/home"
            env["NO_COLOR"] = "1"
            var withKeys = env
            withKeys["AWS_ACCESS_KEY_ID"] = testCredentials.accessKeyId
            withKeys["AWS_SECRET_ACCESS_KEY"] = testCredentials.secretAccessKey.revealed

            // The group allows nothing: each rule the cluster needs is reported with group, port and source.
            let refused = try await Program.runAsync(Self.binary, ["plan", "-f", "plan.yaml"], cwd: dir, environment: withKeys)
            #expect(refused.status == 1, "\(refused.all)")
            #expect(refused.stderr.contains("missing: \(sg): allow tcp/6443 from \(sg)"), "\(refused.stderr)")
            #expect(refused.stderr.contains("missing: \(sg): allow udp/8472 from \(sg)"), "\(refused.stderr)")
            // With manageSecurityGroups they are changes of the plan.
            let text = try String(contentsOfFile: dir + "/plan.yaml", encoding: .utf8)
            try text.replacingOccurrences(of: "region: us-east-1", with: "region: us-east-1\n      manageSecurityGroups: true")
                .write(toFile: dir + "/plan.yaml", atomically: true, encoding: .utf8)
            let managed = try await Program.runAsync(Self.binary, ["plan", "-f", "plan.yaml", "--detailed-exitcode"], cwd: dir,
                                                     environment: withKeys)
            #expect(managed.status == 2, "\(managed.all)")
            #expect(managed.stdout.contains("+ \(sg): allow tcp/6443 from \(sg)"), "\(managed.stdout)")
            #expect(managed.stdout.contains("+ \(sg): allow tcp/10250 from \(sg)"), "\(managed.stdout)")

            let plan = try await Program.runAsync(Self.binary, ["plan", "-f", "plan.yaml", "--json"], cwd: dir, environment: withKeys)
            #expect(plan.status == 0, "\(plan.all)")
            #expect(plan.stderr.contains("Hosts from EC2 (us-east-1): 2 running instances"), "\(plan.stderr)")
            #expect(plan.stderr.contains("cp-1  \(cp[0])  control-plane  ssh 127.87.1.10, cluster 127.87.1.10"), "\(plan.stderr)")
            #expect(plan.stderr.contains("w-1  \(w1[0])  worker"))
            #expect(!plan.all.contains("w-2") && !plan.all.contains("other"))
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
            let hosts = ((doc["changes"] as? [[String: Any]]) ?? []).filter { $0["subject"] as? String == "host" }
                .compactMap { $0["name"] as? String }
            #expect(Set(hosts) == ["cp-1", "w-1"], "\(plan.stdout.prefix(3000))")
            // The secret never shows.
            #expect(!plan.all.contains(testCredentials.secretAccessKey.revealed))

            // No credentials anywhere: exit 1, saying what it was doing.
            let none = try await Program.runAsync(Self.binary, ["plan", "-f", "plan.yaml"], cwd: dir, environment: env)
            #expect(none.status == 1, "\(none.all)")
            #expect(none.stderr.contains("error: finding the hosts of spec.provider.ec2 (us-east-1):"), "\(none.stderr)")
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}
