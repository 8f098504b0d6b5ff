import BootstrapCore
import BootstrapTestSupport
import Foundation
import Testing
@testable import BootstrapEC2

/// Against moto_server, a real EC2 API emulator on 127.0.0.1 (one per test). The world is made through the API:
/// a VPC and subnet on a loopback range, security groups, tagged instances.
@Suite(.enabled(if: Moto.shouldRun, "moto_server not found: run scripts/test-tools (required under CI)"))
struct MotoTests {
    static let fast = RetryPolicy(maxAttempts: 4, base: .milliseconds(5), cap: .milliseconds(20))

    func withMoto(environment: [String: String] = [:],
                  _ body: (LocalServer) async throws -> Void) async throws {
        let server = try await LocalServer.moto(environment: environment)
        do {
            try await body(server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    func client(_ server: LocalServer, _ transport: any HTTPTransport = URLSessionTransport(),
                credentials: AWSCredentials = testCredentials) -> EC2Client {
        EC2Client(region: "us-east-1", credentials: credentials, endpoint: server.endpoint, transport: transport,
                  retry: Self.fast)
    }

    @Test func discoveryByTagsAndIdsPaginatedRunningOnly() async throws {
        try await withMoto { server in
            let counting = CountingTransport()
            let ec2 = client(server, counting)
            // moto takes a VPC and subnet on a loopback range, and the private addresses asked for in it.
            let vpc = try await ec2.createVPC("127.85.0.0/16")
            let subnet = try await ec2.createSubnet(vpc: vpc, cidr: "127.85.1.0/24")
            let sg = try await ec2.createSecurityGroup(vpc: vpc, name: "cluster")
            let cp = try await ec2.runInstances(subnet: subnet, groups: [sg],
                                                tags: ["Name": "cp-1", "cluster": "demo", "role": "control-plane"],
                                                privateIp: "127.85.1.10", type: "t3.large")
            // One reservation each: moto pages by reservation.
            var workers: [String] = []
            for _ in 0..<12 {
                workers += try await ec2.runInstances(subnet: subnet, groups: [sg],
                                                      tags: ["cluster": "demo", "role": "worker"])
            }
            _ = try await ec2.runInstances(count: 2, subnet: subnet, groups: [sg],
                                           tags: ["cluster": "other", "role": "worker"])
            #expect(cp.count == 1 && workers.count == 12)
            try await ec2.stopInstances([workers[0], workers[1]])

            let workerSelector = HostSelector(role: "worker", tags: ["cluster": "demo", "role": "worker"])
            let found = try await ec2.describeInstances(filters: workerSelector.filters, maxResults: 5)
            #expect(Set(found.map(\.instanceId)) == Set(workers.dropFirst(2)))
            let pages = counting.count("DescribeInstances")
            #expect(pages >= 2)  // 10 running in pages of 5
            let everything = try await ec2.describeInstances(maxResults: 5)
            #expect(everything.count == 15)
            #expect(counting.count("DescribeInstances") - pages >= 3)
            #expect(Set(everything.filter { $0.state == "stopped" }.map(\.instanceId)) == Set(workers.prefix(2)))

            let cpSelector = HostSelector(role: "control-plane", instanceIds: cp)
            let cpFound = try await ec2.describeInstances(filters: cpSelector.filters, instanceIds: cpSelector.instanceIds)
            let resolution = HostDiscovery.resolve([(cpSelector, cpFound), (workerSelector, found)], address: .private)
            #expect(resolution.errors.isEmpty)
            let host = try #require(resolution.hosts.first)
            #expect(host.name == "cp-1" && host.role == "control-plane" && host.instanceId == cp[0])
            #expect(host.privateAddress == "127.85.1.10" && host.sshAddress == "127.85.1.10")
            #expect(host.availabilityZone == "us-east-1a" && host.instanceType == "t3.large")
            #expect(host.securityGroupIds == [sg])
            #expect(resolution.hosts.filter { $0.role == "worker" }.count == 10)
            #expect(resolution.hosts.filter { $0.role == "worker" }.allSatisfy {
                $0.name == $0.instanceId && $0.privateAddress.hasPrefix("127.85.1.")
            })

            // An instance id that is stopped is reported, not used.
            let stopped = HostSelector(role: "worker", instanceIds: [workers[0]])
            let none = try await ec2.describeInstances(filters: stopped.filters, instanceIds: stopped.instanceIds)
            let r = HostDiscovery.resolve([(stopped, none)], address: .private)
            #expect(r.hosts.isEmpty && r.errors == ["instance \(workers[0]) (role worker, instanceIds \(workers[0])) "
                                                     + "was not found or is not running"])
        }
    }

    @Test func missingRulesAddedThenExactlyBootstrapsRemoved() async throws {
        try await withMoto { server in
            let ec2 = client(server)
            let vpc = try await ec2.createVPC("127.86.0.0/16")
            let subnet = try await ec2.createSubnet(vpc: vpc, cidr: "127.86.1.0/24")
            let sgCP = try await ec2.createSecurityGroup(vpc: vpc, name: "cp")
            let sgW = try await ec2.createSecurityGroup(vpc: vpc, name: "workers")
            // Rules made by hand: SSH from anywhere on both; the kubelet on the workers from the control planes.
            let hand = [IngressRule(groupId: sgCP, ipProtocol: "tcp", fromPort: 22, toPort: 22, source: .cidr("0.0.0.0/0"),
                                    description: "ssh by hand"),
                        IngressRule(groupId: sgW, ipProtocol: "tcp", fromPort: 22, toPort: 22, source: .cidr("0.0.0.0/0")),
                        IngressRule(groupId: sgW, ipProtocol: "tcp", fromPort: 10250, toPort: 10250, source: .group(sgCP),
                                    description: "kubelet by hand")]
            try await ec2.authorizeIngress(hand)
            let cpIds = try await ec2.runInstances(subnet: subnet, groups: [sgCP], tags: ["Name": "cp-1"], privateIp: "127.86.1.10")
            let wIds = try await ec2.runInstances(subnet: subnet, groups: [sgW], tags: ["Name": "w-1"], privateIp: "127.86.1.20")
            let instances = try await ec2.describeInstances(instanceIds: cpIds + wIds)
            let resolution = HostDiscovery.resolve([(HostSelector(role: "control-plane", instanceIds: cpIds), instances.filter { cpIds.contains($0.instanceId) }),
                                                    (HostSelector(role: "worker", instanceIds: wIds), instances.filter { wIds.contains($0.instanceId) })],
                                                   address: .private)
            let members = resolution.hosts.map { SecurityGroupPlanner.Member($0, controlPlane: $0.role == "control-plane") }
            let groupIds = Array(Set(members.flatMap(\.securityGroupIds))).sorted()

            let before = try await ec2.describeSecurityGroups(groupIds: groupIds)
            // The operator's block needs SSH (the hand-made rule from anywhere covers it), the API and Grafana.
            let missing = SecurityGroupPlanner.missingRules(members: members, groups: before, cni: .calicoBGP,
                                                            operatorCidrs: ["198.51.100.7/32"],
                                                            nodePorts: ["grafana": 30300], cluster: "demo")
            #expect(Set(missing.map(\.rule.description)) == [
                "\(sgCP): allow tcp/6443 from \(sgW)", "\(sgCP): allow tcp/6443 from 198.51.100.7/32",
                "\(sgCP): allow tcp/30300 from 198.51.100.7/32",
                "\(sgCP): allow tcp/10250 from \(sgW)",
                "\(sgCP): allow tcp/179 from \(sgW)", "\(sgW): allow tcp/179 from \(sgCP)",
                "\(sgCP): allow ipip (protocol 4) from \(sgW)", "\(sgW): allow ipip (protocol 4) from \(sgCP)",
            ])
            let kubelet = try #require(missing.first { $0.rule.description == "\(sgCP): allow tcp/10250 from \(sgW)" })
            #expect(kubelet.description.contains("kubelet API: cp-1 from w-1"))

            try await ec2.authorizeIngress(SecurityGroupPlanner.rulesToAdd(missing))
            let after = try await ec2.describeSecurityGroups(groupIds: groupIds)
            #expect(SecurityGroupPlanner.missingRules(members: members, groups: after, cni: .calicoBGP,
                                                      operatorCidrs: ["198.51.100.7/32"], nodePorts: ["grafana": 30300],
                                                      cluster: "demo").isEmpty)
            let added = Set(after.flatMap(\.ingress).map(\.key)).subtracting(before.flatMap(\.ingress).map(\.key))
            #expect(added == Set(missing.map(\.rule.key)))
            #expect(after.flatMap(\.ingress).filter { $0.ruleDescription?.hasPrefix("bootstrap:demo ") == true }.count == 8)

            let revoke = SecurityGroupPlanner.rulesToRevoke(groups: after, cluster: "demo")
            #expect(Set(revoke.map(\.key)) == added)
            try await ec2.revokeIngress(revoke)
            let end = try await ec2.describeSecurityGroups(groupIds: groupIds)
            #expect(Set(end.flatMap(\.ingress).map(\.key)) == Set(before.flatMap(\.ingress).map(\.key)))
            #expect(Set(end.flatMap(\.ingress).map(\.key)).isSuperset(of: hand.map(\.key)))
        }
    }

    /// moto checks credentials once INITIAL_NO_AUTH_ACTION_COUNT actions have passed: unknown keys get its real
    /// AuthFailure; a key it made (through IAM) with no policy is denied (AccessDenied).
    @Test func badCredentialsAndMissingPermissions() async throws {
        try await withMoto(environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "2"]) { server in
            var iam = client(server)
            iam.service = "iam"
            iam.version = "2010-05-08"
            _ = try await iam.call("CreateUser", [.init("UserName", "no-rights")])
            let key = try await iam.call("CreateAccessKey", [.init("UserName", "no-rights")])
            let accessKey = try #require(key.child("CreateAccessKeyResult")?.child("AccessKey"))
            let id = try #require(accessKey.value("AccessKeyId"))
            let secret = try #require(accessKey.value("SecretAccessKey"))

            let unknown = AWSCredentials(accessKeyId: "AKIAUNKNOWN0000", secretAccessKey: Secret("unknown-secret-xyz"),
                                         source: "environment")
            do {
                _ = try await client(server, credentials: unknown).describeInstances()
                Issue.record("expected AuthFailure")
            } catch let e as EC2Error {
                guard case .authFailure(let action, let code, _, _) = e else { Issue.record("\(e)"); return }
                #expect(action == "DescribeInstances" && code == "AuthFailure")
                #expect("\(e)".contains("AKIAUNKNOWN0000 from environment"))
                #expect(!"\(e)".contains("unknown-secret-xyz"))
            }

            let noRights = AWSCredentials(accessKeyId: id, secretAccessKey: Secret(secret), source: "test")
            do {
                _ = try await client(server, credentials: noRights).describeSecurityGroups(groupIds: [])
                Issue.record("expected UnauthorizedOperation")
            } catch let e as EC2Error {
                // Real EC2 answers UnauthorizedOperation (the canned test in EC2ClientTests); moto AccessDenied.
                guard case .unauthorized(let action, let code, _, _) = e else { Issue.record("\(e)"); return }
                #expect(action == "DescribeSecurityGroups" && code == "AccessDenied")
                #expect("\(e)".contains("ec2:DescribeSecurityGroups"))
                #expect(!"\(e)".contains(secret))
            }

            let wrongSecret = AWSCredentials(accessKeyId: id, secretAccessKey: Secret("not-the-secret"), source: "test")
            do {
                _ = try await client(server, credentials: wrongSecret).describeInstances()
                Issue.record("expected an error")
            } catch let e as EC2Error {
                guard case .authFailure = e else { Issue.record("\(e)"); return }
                #expect(!"\(e)".contains("not-the-secret"))
            }
        }
    }
}

/// A stub on loopback (plain Python, no moto needed) that answers 503 RequestLimitExceeded twice, then a page.
@Suite struct ThrottlingStubTests {
    func client(_ server: LocalServer) -> EC2Client {
        EC2Client(region: "us-east-1", credentials: testCredentials, endpoint: server.endpoint,
                  retry: MotoTests.fast)
    }

    @Test func throttledCallRetried() async throws {
        let stub = try await LocalServer.python("""
        import sys, http.server
        count = 0
        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                global count
                count += 1
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if count <= 2:
                    body = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>r</RequestID></Response>"
                    self.send_response(503)
                else:
                    body = ("<DescribeInstancesResponse><reservationSet><item><instancesSet><item><instanceId>i-after-%d</instanceId>"
                            "<instanceState><name>running</name></instanceState></item></instancesSet></item></reservationSet>"
                            "</DescribeInstancesResponse>" % count).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a):
                pass
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """)
        do {
            let found = try await client(stub).describeInstances()
            #expect(found.map(\.instanceId) == ["i-after-3"])
        } catch {
            await stub.stop()
            throw error
        }
        await stub.stop()
    }
}
