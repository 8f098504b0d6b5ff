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

    /// A plan directory with `plan.yaml`, and the environment with the test's keys.
    func planDir(_ yaml: String) throws -> (dir: String, env: [String: String]) {
        let dir = NSTemporaryDirectory() + "bootstrap-ec2-bin-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/home", withIntermediateDirectories: true)
        try yaml.write(toFile: dir + "/plan.yaml", atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }
        env["HOME"] = dir + "/home"
        env["NO_COLOR"] = "1"
        env["AWS_ACCESS_KEY_ID"] = testCredentials.accessKeyId
        env["AWS_SECRET_ACCESS_KEY"] = testCredentials.secretAccessKey.revealed
        return (dir, env)
    }

    /// Instances with public addresses (moto gives them when the subnet maps them on launch): the plan shows
    /// them; the operator's blocks (`operatorCidrs`) need SSH, the API and the add-ons' NodePorts, and a bad
    /// block is refused with its path and line.
    @Test func publicAddressesAndTheOperatorsRules() async throws {
        let server = try await LocalServer.moto()
        do {
            let ec2 = EC2Client(region: "us-east-1", credentials: testCredentials, endpoint: server.endpoint,
                                retry: RetryPolicy(maxAttempts: 3, base: .milliseconds(5), cap: .milliseconds(20)))
            let vpc = try await ec2.createVPC("127.88.0.0/16")
            let subnet = try await ec2.createSubnet(vpc: vpc, cidr: "127.88.1.0/24")
            try await ec2.mapPublicIpOnLaunch(subnet: subnet)
            let sg = try await ec2.createSecurityGroup(vpc: vpc, name: "cluster")
            // Everything between members is open; SSH from anywhere (it covers the operator's blocks).
            try await ec2.authorizeIngress([
                IngressRule(groupId: sg, ipProtocol: "-1", source: .group(sg), description: "members"),
                IngressRule(groupId: sg, ipProtocol: "tcp", fromPort: 22, toPort: 22, source: .cidr("0.0.0.0/0")),
            ])
            let cp = try await ec2.runInstances(subnet: subnet, groups: [sg], tags: ["Name": "cp-1", "cluster": "pub"],
                                                privateIp: "127.88.1.10")
            let described = try await ec2.describeInstances(instanceIds: cp)
            let pub = try #require(described.first?.publicIpAddress)
            #expect(IPv4Address(pub) != nil && pub != "127.88.1.10")

            func yaml(_ cidrs: String, manage: Bool = false) -> String {
                """
                apiVersion: bootstrap.k8s.lab/v1alpha1
                kind: Cluster
                metadata: { name: pub }
                spec:
                  kubernetes: { version: "1.34.1" }
                  addons:
                    monitoring: { enabled: true }
                  provider:
                    ec2:
                      region: us-east-1
                      endpoint: \(server.endpoint.absoluteString)
                      manageSecurityGroups: \(manage)
                      operatorCidrs: \(cidrs)
                      hosts:
                        - { role: control-plane, tags: { cluster: pub } }
                """
            }
            let (dir, env) = try planDir(yaml("[198.51.100.7/32]"))
            defer { try? FileManager.default.removeItem(atPath: dir) }

            let refused = try await Program.runAsync(Self.binary, ["plan", "-f", "plan.yaml"], cwd: dir, environment: env)
            #expect(refused.status == 1, "\(refused.all)")
            #expect(refused.stderr.contains("cp-1  \(cp[0])  control-plane  ssh 127.88.1.10, cluster 127.88.1.10, public \(pub)"),
                    "\(refused.stderr)")
            #expect(refused.stderr.contains("between its members and from spec.provider.ec2.operatorCidrs"), "\(refused.stderr)")
            let missing = refused.stderr.split(separator: "\n").filter { $0.hasPrefix("  missing: ") }
                .map { $0.dropFirst("  missing: ".count).split(separator: " (").first.map(String.init) ?? "" }
            #expect(Set(missing) == ["\(sg): allow tcp/6443 from 198.51.100.7/32", "\(sg): allow tcp/30300 from 198.51.100.7/32",
                                     "\(sg): allow tcp/30090 from 198.51.100.7/32"],
                    "\(refused.stderr)")

            try yaml("[198.51.100.7/32]", manage: true).write(toFile: dir + "/plan.yaml", atomically: true, encoding: .utf8)
            let managed = try await Program.runAsync(Self.binary, ["plan", "-f", "plan.yaml"], cwd: dir, environment: env)
            #expect(managed.status == 0, "\(managed.all)")
            #expect(managed.stdout.contains("+ \(sg): allow tcp/30300 from 198.51.100.7/32 (grafana NodePort: cp-1 from operator 198.51.100.7/32)"),
                    "\(managed.stdout)")
            #expect(!managed.stdout.contains("tcp/22 from"), "\(managed.stdout)")
            // --json lists them, and a saved plan carries them to apply.
            let json = try await Program.runAsync(Self.binary, ["plan", "-f", "plan.yaml", "--json", "--out", "saved.plan"],
                                                  cwd: dir, environment: env)
            #expect(json.status == 0, "\(json.all)")
            func rules(_ text: String) throws -> [[String: Any]] {
                let doc = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                return doc["securityGroupRules"] as? [[String: Any]] ?? []
            }
            let listed = try rules(json.stdout)
            #expect(listed.count == 3, "\(json.stdout.suffix(2000))")
            let grafanaRule = listed.first { $0["fromPort"] as? Int == 30300 }
            #expect(grafanaRule?["groupId"] as? String == sg && grafanaRule?["source"] as? String == "198.51.100.7/32")
            #expect(grafanaRule?["ruleDescription"] as? String == "bootstrap:pub nodeport-grafana")
            let savedText = try String(contentsOfFile: dir + "/saved.plan", encoding: .utf8)
            #expect(try rules(savedText).count == 3, "\(savedText.prefix(500))")

            try yaml("[198.51.100.7/32, 10.0.0.1/8]").write(toFile: dir + "/plan.yaml", atomically: true, encoding: .utf8)
            let bad = try await Program.runAsync(Self.binary, ["plan", "-f", "plan.yaml"], cwd: dir, environment: env)
            #expect(bad.status == 2, "\(bad.all)")
            #expect(bad.stderr.contains("spec.provider.ec2.operatorCidrs[1]"), "\(bad.stderr)")
            #expect(bad.stderr.contains("10.0.0.0/8"), "\(bad.stderr)")
            #expect(bad.stderr.contains("plan.yaml:13:"), "\(bad.stderr)")
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    /// A proxy on loopback in front of moto answers the first two DescribeInstances with 503
    /// RequestLimitExceeded (EC2's error body), then passes every call through: the plan is made, and stderr
    /// shows each retry.
    @Test func throttledCallsRetriedByTheBinary() async throws {
        let server = try await LocalServer.moto()
        var proxy: LocalServer?
        do {
            let ec2 = EC2Client(region: "us-east-1", credentials: testCredentials, endpoint: server.endpoint,
                                retry: RetryPolicy(maxAttempts: 3, base: .milliseconds(5), cap: .milliseconds(20)))
            let vpc = try await ec2.createVPC("127.89.0.0/16")
            let subnet = try await ec2.createSubnet(vpc: vpc, cidr: "127.89.1.0/24")
            let sg = try await ec2.createSecurityGroup(vpc: vpc, name: "cluster")
            try await ec2.authorizeIngress([IngressRule(groupId: sg, ipProtocol: "-1", source: .group(sg))])
            _ = try await ec2.runInstances(subnet: subnet, groups: [sg], tags: ["Name": "cp-1", "cluster": "slow"],
                                           privateIp: "127.89.1.10")
            let p = try await LocalServer.python("""
            import sys, http.server, urllib.request, urllib.error
            UPSTREAM = "http://127.0.0.1:\(server.port)/"
            throttled = 0
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    global throttled
                    body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    if b"Action=DescribeInstances" in body and throttled < 2:
                        throttled += 1
                        status = 503
                        out = (b"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>RequestLimitExceeded"
                               b"</Code><Message>Request limit exceeded.</Message></Error></Errors>"
                               b"<RequestID>throttle-%d</RequestID></Response>" % throttled)
                        sys.stderr.write("throttled %d\\n" % throttled)
                    else:
                        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                        req = urllib.request.Request(UPSTREAM, data=body, headers=headers, method="POST")
                        try:
                            with urllib.request.urlopen(req) as r:
                                status, out = r.status, r.read()
                        except urllib.error.HTTPError as e:
                            status, out = e.code, e.read()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                def log_message(self, *a):
                    pass
            http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
            """)
            proxy = p
            let (dir, env) = try planDir("""
                apiVersion: bootstrap.k8s.lab/v1alpha1
                kind: Cluster
                metadata: { name: slow }
                spec:
                  kubernetes: { version: "1.34.1" }
                  provider:
                    ec2:
                      region: us-east-1
                      endpoint: \(p.endpoint.absoluteString)
                      hosts:
                        - { role: control-plane, tags: { cluster: slow } }
                """)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let run = try await Program.runAsync(Self.binary, ["plan", "-f", "plan.yaml"], cwd: dir, environment: env)
            #expect(run.status == 0, "\(run.all)")
            #expect(run.stderr.contains("Hosts from EC2 (us-east-1): 1 running instance"), "\(run.stderr)")
            let notes = run.stderr.split(separator: "\n").filter {
                $0.hasPrefix("note: EC2 DescribeInstances throttled (RequestLimitExceeded, HTTP 503); retry ")
            }
            #expect(notes.count == 2, "\(run.stderr)")
            #expect(notes.first?.contains("retry 1 of 5 in ") == true && notes.last?.contains("retry 2 of 5 in ") == true)
        } catch {
            await proxy?.stop()
            await server.stop()
            throw error
        }
        await proxy?.stop()
        await server.stop()
    }
}
