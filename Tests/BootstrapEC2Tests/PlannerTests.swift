import BootstrapCore
import Testing
@testable import BootstrapEC2

@Suite struct DiscoveryTests {
    func instance(_ id: String, name: String? = nil, state: String = "running", priv: String? = "10.0.1.10",
                  pub: String? = "203.0.113.10", groups: [String] = ["sg-a"]) -> EC2Instance {
        EC2Instance(instanceId: id, state: state, instanceType: "t3.medium", availabilityZone: "eu-west-1a",
                    privateIpAddress: priv, publicIpAddress: pub, tags: name.map { ["Name": $0] } ?? [:],
                    securityGroupIds: groups)
    }

    @Test func selectorsBecomeFilters() {
        let s = HostSelector(role: "worker", tags: ["cluster": "demo", "role": "worker"])
        #expect(s.filters == [EC2Filter("instance-state-name", ["running"]), EC2Filter("tag:cluster", ["demo"]),
                              EC2Filter("tag:role", ["worker"])])
        #expect(HostSelector(role: "cp", instanceIds: ["i-1"]).instanceIds == ["i-1"])
    }

    @Test func hostsNamedByNameTagOrInstanceId() {
        let r = HostDiscovery.resolve([
            (HostSelector(role: "control-plane", tags: ["role": "cp"]),
             [instance("i-1", name: "cp-1", priv: "10.0.1.1", pub: "203.0.113.1")]),
            (HostSelector(role: "worker", tags: ["role": "worker"]),
             [instance("i-2", priv: "10.0.1.2", pub: "203.0.113.2"),
              instance("i-3", name: "stopped", state: "stopped")]),
        ], address: .public)
        #expect(r.errors.isEmpty)
        #expect(r.hosts.map(\.name) == ["cp-1", "i-2"])
        #expect(r.hosts.map(\.sshAddress) == ["203.0.113.1", "203.0.113.2"])
        #expect(r.hosts.map(\.privateAddress) == ["10.0.1.1", "10.0.1.2"])
        #expect(r.hosts[0].role == "control-plane" && r.hosts[0].instanceType == "t3.medium"
                && r.hosts[0].availabilityZone == "eu-west-1a" && r.hosts[0].securityGroupIds == ["sg-a"])

        let p = HostDiscovery.resolve([(HostSelector(role: "worker", instanceIds: ["i-2"]),
                                        [instance("i-2", priv: "10.0.1.2", pub: nil)])], address: .private)
        #expect(p.errors.isEmpty)
        #expect(p.hosts.map(\.sshAddress) == ["10.0.1.2"])
    }

    @Test func conflictsDuplicatesAndMissingAreReported() {
        let r = HostDiscovery.resolve([
            (HostSelector(role: "control-plane", instanceIds: ["i-1", "i-9"]), [instance("i-1", name: "n")]),
            (HostSelector(role: "worker", tags: ["env": "x"]),
             [instance("i-1", name: "n"), instance("i-2", name: "n"), instance("i-3", name: "w", pub: nil)]),
            (HostSelector(role: "worker", tags: ["env": "empty"]), []),
        ], address: .public)
        #expect(r.errors.contains { $0.contains("i-9") && $0.contains("not found or is not running") })
        #expect(r.errors.contains { $0.contains("i-1") && $0.contains("one instance has one role") })
        #expect(r.errors.contains { $0.contains("named 'n'") && $0.contains("i-1, i-2") })
        #expect(r.errors.contains { $0.contains("i-3") && $0.contains("no public address") })
        #expect(r.warnings == ["no running instance matches role worker, tags env=empty"])
        // The same instance matched twice for the same role is one host.
        let same = HostDiscovery.resolve([
            (HostSelector(role: "worker", tags: ["a": "1"]), [instance("i-5", name: "w5")]),
            (HostSelector(role: "worker", instanceIds: ["i-5"]), [instance("i-5", name: "w5")]),
        ], address: .public)
        #expect(same.errors.isEmpty && same.hosts.count == 1)
    }
}

@Suite struct SecurityGroupPlannerTests {
    typealias M = SecurityGroupPlanner.Member
    let cp1 = M(name: "cp-1", controlPlane: true, privateAddress: "10.0.1.1", securityGroupIds: ["sg-cp"])
    let cp2 = M(name: "cp-2", controlPlane: true, privateAddress: "10.0.1.2", securityGroupIds: ["sg-cp"])
    let w1 = M(name: "w-1", controlPlane: false, privateAddress: "10.0.2.1", securityGroupIds: ["sg-w"])

    func rule(_ g: String, _ p: String, _ from: Int?, _ to: Int?, _ s: IngressRule.Source, _ d: String? = nil) -> IngressRule {
        IngressRule(groupId: g, ipProtocol: p, fromPort: from, toPort: to, source: s, description: d)
    }

    @Test func everythingMissingFromEmptyGroups() {
        let missing = SecurityGroupPlanner.missingRules(
            members: [cp1, cp2, w1], groups: [EC2SecurityGroup(groupId: "sg-cp"), EC2SecurityGroup(groupId: "sg-w")],
            cni: .flannel, operatorCidrs: ["198.51.100.7"], cluster: "demo")
        let texts = Set(missing.map(\.rule.description))
        #expect(texts == [
            "sg-cp: allow tcp/6443 from sg-cp", "sg-cp: allow tcp/6443 from sg-w", "sg-cp: allow tcp/6443 from 198.51.100.7/32",
            "sg-cp: allow tcp/10250 from sg-cp", "sg-cp: allow tcp/10250 from sg-w",
            "sg-w: allow tcp/10250 from sg-cp",
            "sg-cp: allow tcp/2379-2380 from sg-cp",
            "sg-cp: allow udp/8472 from sg-cp", "sg-cp: allow udp/8472 from sg-w", "sg-w: allow udp/8472 from sg-cp",
            "sg-cp: allow tcp/22 from 198.51.100.7/32", "sg-w: allow tcp/22 from 198.51.100.7/32",
        ])
        #expect(missing.allSatisfy { $0.rule.ruleDescription?.hasPrefix("bootstrap:demo ") == true })
        let api = missing.first { $0.rule.description == "sg-cp: allow tcp/6443 from sg-w" }!
        #expect(api.purpose == "Kubernetes API" && api.targets == ["cp-1", "cp-2"] && api.sources == ["w-1"])
    }

    @Test func existingRulesSatisfyWhatTheyCover() {
        let groups = [
            EC2SecurityGroup(groupId: "sg-cp", ingress: [
                rule("sg-cp", "-1", nil, nil, .group("sg-cp")),                 // all traffic between control planes
                rule("sg-cp", "tcp", 0, 65535, .cidr("10.0.0.0/16")),           // every TCP port from the VPC
                rule("sg-cp", "tcp", 22, 22, .cidr("0.0.0.0/0")),
                rule("sg-cp", "udp", 8472, 8472, .group("sg-w")),
            ]),
            EC2SecurityGroup(groupId: "sg-w", ingress: [
                rule("sg-w", "6", 10250, 10250, .group("sg-cp")),              // tcp as its number
                rule("sg-w", "udp", 8000, 9000, .cidr("10.0.1.0/24")),          // covers 8472 from the control planes
            ]),
        ]
        let missing = SecurityGroupPlanner.missingRules(members: [cp1, cp2, w1], groups: groups, cni: .flannel,
                                                        operatorCidrs: ["198.51.100.7"], cluster: "demo")
        #expect(missing.map(\.rule.description) == [
            "sg-cp: allow tcp/6443 from 198.51.100.7/32",
            "sg-w: allow tcp/22 from 198.51.100.7/32",
        ])
    }

    @Test func operatorRulesNeedTheWholeOperatorRange() {
        let groups = [EC2SecurityGroup(groupId: "sg-cp", ingress: [
            rule("sg-cp", "tcp", 6443, 6443, .cidr("198.51.100.0/24")),
            rule("sg-cp", "tcp", 22, 22, .cidr("198.51.100.7/32")),
        ])]
        let one = SecurityGroupPlanner.missingRules(members: [cp1], groups: groups, cni: .flannel,
                                                    operatorCidrs: ["198.51.100.7"], cluster: "c")
        #expect(one.isEmpty)
        let wider = SecurityGroupPlanner.missingRules(members: [cp1], groups: groups, cni: .flannel,
                                                      operatorCidrs: ["198.51.0.0/16"], cluster: "c")
        #expect(wider.map(\.rule.description) == ["sg-cp: allow tcp/6443 from 198.51.0.0/16",
                                                   "sg-cp: allow tcp/22 from 198.51.0.0/16"])
        let none = SecurityGroupPlanner.missingRules(members: [cp1], groups: [], cni: .flannel, cluster: "c")
        #expect(none.isEmpty)
    }

    /// Each operator block gets SSH everywhere, the API and the add-ons' NodePorts on the control planes; a rule
    /// from anywhere covers them all.
    @Test func operatorBlocksAndNodePorts() {
        let sg = [EC2SecurityGroup(groupId: "sg-cp"), EC2SecurityGroup(groupId: "sg-w")]
        let missing = SecurityGroupPlanner.missingRules(members: [cp1, w1], groups: sg, cni: .flannel,
                                                        operatorCidrs: ["198.51.100.7/32", "203.0.113.0/24"],
                                                        nodePorts: ["grafana": 30300, "dashboard": 30443], cluster: "c")
            .filter { if case .cidr = $0.rule.source { return true } else { return false } }
        #expect(missing.map(\.rule.description) == [
            "sg-cp: allow tcp/6443 from 198.51.100.7/32", "sg-cp: allow tcp/22 from 198.51.100.7/32",
            "sg-cp: allow tcp/30300 from 198.51.100.7/32", "sg-cp: allow tcp/30443 from 198.51.100.7/32",
            "sg-cp: allow tcp/6443 from 203.0.113.0/24", "sg-cp: allow tcp/22 from 203.0.113.0/24",
            "sg-cp: allow tcp/30300 from 203.0.113.0/24", "sg-cp: allow tcp/30443 from 203.0.113.0/24",
            "sg-w: allow tcp/22 from 198.51.100.7/32", "sg-w: allow tcp/22 from 203.0.113.0/24",
        ])
        let grafana = missing.first { $0.rule.description == "sg-cp: allow tcp/30300 from 198.51.100.7/32" }
        #expect(grafana?.description == "sg-cp: allow tcp/30300 from 198.51.100.7/32 (grafana NodePort: cp-1 from operator 198.51.100.7/32)")
        #expect(grafana?.rule.ruleDescription == "bootstrap:c nodeport-grafana")

        let open = [EC2SecurityGroup(groupId: "sg-cp", ingress: [rule("sg-cp", "tcp", 0, 65535, .cidr("0.0.0.0/0"))]),
                    EC2SecurityGroup(groupId: "sg-w", ingress: [rule("sg-w", "tcp", 22, 22, .cidr("0.0.0.0/0"))])]
        let covered = SecurityGroupPlanner.missingRules(members: [cp1, w1], groups: open, cni: .flannel,
                                                        operatorCidrs: ["198.51.100.7/32", "203.0.113.0/24"],
                                                        nodePorts: ["grafana": 30300], cluster: "c")
        #expect(!covered.contains { if case .cidr = $0.rule.source { return true } else { return false } })
    }

    @Test func calicoPorts() {
        let sg = [EC2SecurityGroup(groupId: "sg-cp"), EC2SecurityGroup(groupId: "sg-w")]
        let vxlan = SecurityGroupPlanner.missingRules(members: [cp1, w1], groups: sg, cni: .calicoVXLAN,
                                                      cluster: "c").map(\.rule.description)
        #expect(vxlan.contains("sg-w: allow udp/4789 from sg-cp") && !vxlan.contains { $0.contains("8472") })
        let bgp = SecurityGroupPlanner.missingRules(members: [cp1, w1], groups: sg, cni: .calicoBGP,
                                                    cluster: "c").map(\.rule.description)
        #expect(bgp.contains("sg-w: allow tcp/179 from sg-cp"))
        #expect(bgp.contains("sg-w: allow ipip (protocol 4) from sg-cp"))
        // An existing IP-in-IP rule written as the protocol's name counts.
        let withIPIP = [EC2SecurityGroup(groupId: "sg-cp", ingress: [rule("sg-cp", "4", -1, -1, .group("sg-w"))]),
                        EC2SecurityGroup(groupId: "sg-w", ingress: [rule("sg-w", "ipip", nil, nil, .group("sg-cp"))])]
        let left = SecurityGroupPlanner.missingRules(members: [cp1, w1], groups: withIPIP, cni: .calicoBGP,
                                                     cluster: "c").map(\.rule.description)
        #expect(!left.contains { $0.contains("protocol 4") })
    }

    @Test func revokeOnlyBootstrapsOwnRulesOfThisCluster() {
        let groups = [EC2SecurityGroup(groupId: "sg-cp", ingress: [
            rule("sg-cp", "tcp", 6443, 6443, .group("sg-w"), "bootstrap:demo kube-apiserver"),
            rule("sg-cp", "tcp", 6443, 6443, .cidr("0.0.0.0/0"), "opened by hand"),
            rule("sg-cp", "tcp", 22, 22, .cidr("198.51.100.7/32"), nil),
            rule("sg-cp", "tcp", 10250, 10250, .group("sg-w"), "bootstrap:demo2 kubelet"),
            rule("sg-cp", "udp", 8472, 8472, .group("sg-cp"), "bootstrap:demo flannel-vxlan"),
        ])]
        let revoke = SecurityGroupPlanner.rulesToRevoke(groups: groups, cluster: "demo")
        #expect(revoke.map(\.description) == ["sg-cp: allow tcp/6443 from sg-w", "sg-cp: allow udp/8472 from sg-cp"])
    }

    @Test func rulesToAddAreUnique() {
        let missing = SecurityGroupPlanner.missingRules(members: [cp1, cp2], groups: [EC2SecurityGroup(groupId: "sg-cp")],
                                                        cni: .flannel, cluster: "demo")
        let add = SecurityGroupPlanner.rulesToAdd(missing)
        #expect(add.count == Set(add.map(\.key)).count)
        #expect(add.count == 4)  // 6443, 10250, 2379-2380, 8472 from sg-cp
    }
}
