import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// Instances made in moto with the lab hosts' addresses as their private IPs (moto takes a VPC on a
    /// loopback range), found by tag, bootstrapped and labelled from the instance metadata; a stopped instance
    /// and another cluster's are left out. The plan is saved and applied from the file, security-group rules
    /// included (the operator's too); `show` prints the control plane's public address.
    @Suite(.enabled(if: E2E.enabled && Moto.shouldRun, "needs root and moto_server (scripts/test-tools)"))
    struct EC2LabTests {
        @Test func hostsFoundByTagAreBootstrapped() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.141")
                defer { lab.down() }
                let moto = try LocalServer.motoNow()
                defer { moto.stopNow() }
                let python = try #require(Moto.python)
                let endpoint = moto.endpoint.absoluteString
                let aws = ["AWS_ACCESS_KEY_ID": "AKIAE2ETESTING", "AWS_SECRET_ACCESS_KEY": "e2e-secret-0123456789",
                           "AWS_DEFAULT_REGION": "us-east-1", "NO_COLOR": "1"]
                // The world, through boto3 (moto's own dependency): VPC, subnet, tagged instances.
                let octets = lab.net.split(separator: ".")
                let setup = """
                    import sys, time, boto3
                    ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1")
                    for _ in range(100):
                        try:
                            ec2.describe_regions(); break
                        except Exception:
                            time.sleep(0.2)
                    vpc = ec2.create_vpc(CidrBlock="\(octets[0]).\(octets[1]).0.0/16")["Vpc"]["VpcId"]
                    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="\(lab.net).0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
                    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
                    sg = ec2.create_security_group(VpcId=vpc, GroupName="e2e", Description="e2e nodes")["GroupId"]
                    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 9999, "ToPort": 9999,
                        "UserIdGroupPairs": [{"GroupId": sg, "Description": "by hand"}]}])
                    print(sg)
                    def run(name, role, ip, cluster="e2e"):
                        tags = [{"Key": "Name", "Value": name}, {"Key": "cluster", "Value": cluster}, {"Key": "role", "Value": role}]
                        kw = {"PrivateIpAddress": ip} if ip else {}
                        r = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet, InstanceType="t3.medium", SecurityGroupIds=[sg],
                                              TagSpecifications=[{"ResourceType": "instance", "Tags": tags}], **kw)
                        return r["Instances"][0]["InstanceId"]
                    def public(i):
                        return ec2.describe_instances(InstanceIds=[i])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
                    cp = run("cp-1", "control-plane", "\(lab.address(1))")
                    print(cp)
                    print(run("worker-1", "worker", "\(lab.address(2))"))
                    print(public(cp))
                    stopped = run("worker-9", "worker", "\(lab.net).99")
                    ec2.stop_instances(InstanceIds=[stopped])
                    run("other-1", "worker", None, cluster="other")
                    """
                let made = try runProgram(python, ["-c", setup, endpoint], env: aws)
                #expect(made.status == 0, "\(made.all)")
                var ids = made.stdout.split(separator: "\n").map(String.init)
                let sg = ids.isEmpty ? "" : ids.removeFirst()
                let cpPublic = ids.count == 3 ? ids.removeLast() : ""
                #expect(ids.count == 2)

                let plan = try lab.writePlan(lab.plan(workers: 0).components(separatedBy: "  hosts:")[0] + """
                      provider:
                        ec2:
                          region: us-east-1
                          endpoint: \(endpoint)
                          sshAddress: private
                          manageSecurityGroups: true
                          operatorCidrs: [198.51.100.7/32]
                          hosts:
                            - { role: control-plane, tags: { cluster: e2e, role: control-plane } }
                            - { role: worker, tags: { cluster: e2e, role: worker } }
                    """)
                // Saved, then applied from the file: the rules travel with it.
                let saved = try runProgram(E2E.binary, ["plan", "-f", plan, "--out", "ec2.plan"], cwd: lab.work, env: aws)
                #expect(saved.status == 0, "\(saved.all)")
                #expect(saved.stderr.contains("Hosts from EC2 (us-east-1): 2 running instances"), "\(saved.stderr)")
                #expect(saved.stderr.contains("cluster \(lab.address(1)), public \(cpPublic)"), "\(saved.stderr)")
                #expect(saved.stdout.contains("+ \(sg): allow tcp/22 from 198.51.100.7/32"), "\(saved.stdout)")
                let apply = try runProgram(E2E.binary, ["apply", "ec2.plan", "--auto-approve"], cwd: lab.work, env: aws)
                #expect(apply.status == 0, "\(apply.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                let hosts = try lab.state()["hosts"] as? [String: [String: Any]] ?? [:]
                #expect(Set(hosts.keys) == ["cp-1", "worker-1"])
                #expect(ids.count == 2 && hosts["cp-1"]?["instanceId"] as? String == ids[0])
                #expect(ids.count == 2 && hosts["worker-1"]?["instanceId"] as? String == ids[1])
                #expect(hosts["worker-1"]?["privateAddress"] as? String == lab.address(2))
                #expect(!cpPublic.isEmpty && hosts["cp-1"]?["publicAddress"] as? String == cpPublic)
                // show's outputs: the API at the control plane's public address (its SSH address is private).
                let show = try runProgram(E2E.binary, ["show", "-f", plan], cwd: lab.work, env: aws)
                #expect(show.stdout.contains("api_endpoint = https://\(cpPublic):6443"), "\(show.all)")

                // From IMDSv2 on each node: zone, region and instance type labels, and the kubelet's providerID.
                let labels = try lab.kubectl("get node worker-1 -o jsonpath='{.metadata.labels}'").stdout
                #expect(labels.contains("\"topology.kubernetes.io/zone\":\"us-east-1a\""), "\(labels)")
                #expect(labels.contains("\"topology.kubernetes.io/region\":\"us-east-1\""), "\(labels)")
                #expect(labels.contains("\"node.kubernetes.io/instance-type\":\"t3."), "\(labels)")
                for i in 1...2 {
                    let kubelet = try lab.exec(i, "cat /var/lib/kubelet/config.yaml").stdout
                    #expect(kubelet.contains("providerID: aws:///us-east-1a/i-"), "lab-\(i): \(kubelet)")
                    let flags = try lab.exec(i, "cat /var/lib/kubelet/kubeadm-flags.env").stdout
                    #expect(flags.contains("--node-ip=\(lab.address(i))"), "lab-\(i): \(flags)")
                }

                // Exactly the rules the cluster lacked were added, each marked as bootstrap's.
                #expect(apply.stdout.contains("+ \(sg): allow tcp/6443 from \(sg)"), "\(apply.stdout)")
                let listRules = { try runProgram(python, ["-c", """
                    import sys, boto3
                    ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1")
                    g = ec2.describe_security_groups(GroupIds=[sys.argv[2]])["SecurityGroups"][0]
                    for p in g["IpPermissions"]:
                        for s in p.get("UserIdGroupPairs", []):
                            print("%s/%s-%s from %s %s" % (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), s["GroupId"], s.get("Description", "")))
                        for s in p.get("IpRanges", []):
                            print("%s/%s-%s from %s %s" % (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), s["CidrIp"], s.get("Description", "")))
                    """, endpoint, sg], env: aws) }
                let rules = try listRules()
                let ours = rules.stdout.split(separator: "\n").filter { $0.contains("bootstrap:e2e ") }
                #expect(Set(ours.map { String($0.split(separator: " ").prefix(3).joined(separator: " ")) })
                        == ["tcp/6443-6443 from \(sg)", "tcp/10250-10250 from \(sg)", "udp/8472-8472 from \(sg)",
                            "tcp/22-22 from 198.51.100.7/32", "tcp/6443-6443 from 198.51.100.7/32"],
                        "\(rules.all)")  // one control plane: no etcd peers
                #expect(rules.stdout.contains("tcp/9999-9999 from \(sg) by hand"), "\(rules.stdout)")

                // Nothing to do afterwards, as long as the instances are the same.
                let again = try runProgram(E2E.binary, ["plan", "-f", plan, "--detailed-exitcode"], cwd: lab.work, env: aws)
                #expect(again.status == 0, "\(again.all)")

                // destroy removes exactly the rules bootstrap added; the one made by hand stays.
                let destroy = try runProgram(E2E.binary, ["destroy", "-f", plan, "--auto-approve"], cwd: lab.work, env: aws)
                #expect(destroy.status == 0, "\(destroy.all)")
                #expect(destroy.stdout.contains("Removed 5 security-group rules bootstrap had added"), "\(destroy.stdout)")
                #expect(try listRules().stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                        == "tcp/9999-9999 from \(sg) by hand")
            }
        }
    }
}
