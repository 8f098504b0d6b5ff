import BootstrapCore

/// The pod network, for the ports it needs between nodes.
public enum CNIPorts: String, Sendable, Hashable {
    /// flannel's VXLAN backend: 8472/udp.
    case flannel
    /// Calico with VXLAN: 4789/udp.
    case calicoVXLAN
    /// Calico with BGP and IP-in-IP: 179/tcp and IP protocol 4.
    case calicoBGP
}

/// What the cluster needs open between its members and from the operator's machine, checked against the
/// instances' security groups; and the rules bootstrap adds and, on destroy, removes (only its own, which it
/// recognises by their description).
public enum SecurityGroupPlanner {
    public struct Member: Sendable, Hashable {
        public var name: String
        public var controlPlane: Bool
        public var privateAddress: String
        public var securityGroupIds: [String]

        public init(name: String, controlPlane: Bool, privateAddress: String, securityGroupIds: [String]) {
            self.name = name
            self.controlPlane = controlPlane
            self.privateAddress = privateAddress
            self.securityGroupIds = securityGroupIds
        }

        public init(_ host: ResolvedHost, controlPlane: Bool) {
            self.init(name: host.name, controlPlane: controlPlane, privateAddress: host.privateAddress,
                      securityGroupIds: host.securityGroupIds)
        }
    }

    /// A rule the cluster needs and no group of the target allows: the rule to add (on the target's first
    /// group, from the source's first group or the operator's address), why, and for which hosts.
    public struct Missing: Sendable, Hashable, CustomStringConvertible {
        public var rule: IngressRule
        public var purpose: String
        public var targets: [String]
        public var sources: [String]

        public init(rule: IngressRule, purpose: String, targets: [String], sources: [String]) {
            self.rule = rule
            self.purpose = purpose
            self.targets = targets
            self.sources = sources
        }

        /// `sg-0abc: allow tcp/6443 from sg-0abc (API server, members → control planes: cp-1 from worker-1)`
        public var description: String {
            "\(rule) (\(purpose): \(targets.joined(separator: ", ")) from \(sources.joined(separator: ", ")))"
        }
    }

    /// The description bootstrap gives the rules it adds: `bootstrap:CLUSTER PURPOSE`.
    public static func marker(cluster: String) -> String { "bootstrap:\(cluster)" }

    struct Port: Hashable {
        var proto: String
        var from: Int?
        var to: Int?
        var purpose: String
        var tag: String
    }

    enum Source: Hashable {
        case member(Member)
        case operatorCIDR(CIDR)

        var name: String {
            switch self {
            case .member(let m): return m.name
            case .operatorCIDR(let c): return "operator \(c)"
            }
        }
    }

    static func cniPorts(_ cni: CNIPorts) -> [Port] {
        switch cni {
        case .flannel: return [Port(proto: "udp", from: 8472, to: 8472, purpose: "flannel VXLAN", tag: "flannel-vxlan")]
        case .calicoVXLAN:
            return [Port(proto: "udp", from: 4789, to: 4789, purpose: "Calico VXLAN", tag: "calico-vxlan")]
        case .calicoBGP:
            return [Port(proto: "tcp", from: 179, to: 179, purpose: "Calico BGP", tag: "calico-bgp"),
                    Port(proto: "4", from: nil, to: nil, purpose: "Calico IP-in-IP", tag: "calico-ipip")]
        }
    }

    /// The operator's address as a CIDR: `203.0.113.5` is `/32`.
    public static func operatorCIDR(_ text: String) -> CIDR? {
        CIDR(text.contains("/") ? text : "\(text)/32")
    }

    /// Each rule the cluster needs that no group of its target allows. Each of `operatorCidrs` (CIDR blocks,
    /// or addresses taken as /32) adds 22/tcp to every host, and 6443/tcp and `nodePorts` (the add-ons' web
    /// interfaces by service, which `show` prints at a control plane) to the control planes, from that block;
    /// none leaves the operator out. A rule whose CIDR contains the operator's block (0.0.0.0/0 too) covers it.
    public static func missingRules(members: [Member], groups: [EC2SecurityGroup], cni: CNIPorts,
                                    operatorCidrs: [String] = [], nodePorts: [String: Int] = [:],
                                    cluster: String) -> [Missing] {
        let rulesByGroup = Dictionary(groups.map { ($0.groupId, $0.ingress) }, uniquingKeysWith: { a, _ in a })
        let operators = operatorCidrs.compactMap(operatorCIDR)
        let uis = nodePorts.sorted { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }.map {
            Port(proto: "tcp", from: $0.value, to: $0.value, purpose: "\($0.key) NodePort", tag: "nodeport-\($0.key)")
        }
        let api = Port(proto: "tcp", from: 6443, to: 6443, purpose: "Kubernetes API", tag: "kube-apiserver")
        let kubelet = Port(proto: "tcp", from: 10250, to: 10250, purpose: "kubelet API", tag: "kubelet")
        let etcd = Port(proto: "tcp", from: 2379, to: 2380, purpose: "etcd", tag: "etcd")
        let ssh = Port(proto: "tcp", from: 22, to: 22, purpose: "SSH", tag: "ssh")

        var needs: [(target: Member, port: Port, source: Source)] = []
        for t in members {
            for s in members where s != t {
                if t.controlPlane { needs.append((t, api, .member(s))) }
                needs.append((t, kubelet, .member(s)))
                if t.controlPlane && s.controlPlane { needs.append((t, etcd, .member(s))) }
                for p in cniPorts(cni) { needs.append((t, p, .member(s))) }
            }
            for op in operators {
                if t.controlPlane { needs.append((t, api, .operatorCIDR(op))) }
                needs.append((t, ssh, .operatorCIDR(op)))
                if t.controlPlane { for p in uis { needs.append((t, p, .operatorCIDR(op))) } }
            }
        }

        var order: [IngressRule] = []
        var found: [IngressRule: Missing] = [:]
        for (target, port, source) in needs {
            let allowed = target.securityGroupIds.contains { gid in
                (rulesByGroup[gid] ?? []).contains { allows($0, port: port, from: source) }
            }
            if allowed { continue }
            guard let group = target.securityGroupIds.first else { continue }
            let ruleSource: IngressRule.Source
            switch source {
            case .member(let m):
                guard let g = m.securityGroupIds.first else { continue }
                ruleSource = .group(g)
            case .operatorCIDR(let c): ruleSource = .cidr(c.description)
            }
            let rule = IngressRule(groupId: group, ipProtocol: port.proto, fromPort: port.from, toPort: port.to,
                                   source: ruleSource, description: "\(marker(cluster: cluster)) \(port.tag)")
            if var m = found[rule] {
                if !m.targets.contains(target.name) { m.targets.append(target.name) }
                if !m.sources.contains(source.name) { m.sources.append(source.name) }
                found[rule] = m
            } else {
                order.append(rule)
                found[rule] = Missing(rule: rule, purpose: port.purpose, targets: [target.name],
                                      sources: [source.name])
            }
        }
        return order.map { found[$0]! }
    }

    /// Whether `rule` lets `source` reach `port`.
    static func allows(_ rule: IngressRule, port: Port, from source: Source) -> Bool {
        let proto = IngressRule.normalizedProtocol(rule.ipProtocol)
        if proto != "-1" {
            guard proto == port.proto else { return false }
            if proto == "tcp" || proto == "udp" {
                let from = rule.fromPort ?? -1, to = rule.toPort ?? -1
                let all = from == -1 || (from == 0 && to == 65535)
                if !all {
                    guard let want = port.from, let wantTo = port.to, from <= want, to >= wantTo else { return false }
                }
            }
        }
        switch (rule.source, source) {
        case (.group(let g), .member(let m)):
            return m.securityGroupIds.contains(g)
        case (.cidr(let c), .member(let m)):
            guard let cidr = CIDR(c), let address = IPv4Address(m.privateAddress) else { return false }
            return cidr.contains(address)
        case (.cidr(let c), .operatorCIDR(let op)):
            guard let cidr = CIDR(c) else { return false }
            return cidr.prefix <= op.prefix && cidr.contains(op.network)
        case (.group, .operatorCIDR):
            return false
        }
    }

    /// The rules to add: the missing ones, once each.
    public static func rulesToAdd(_ missing: [Missing]) -> [IngressRule] {
        var seen = Set<IngressRule>()
        return missing.map(\.rule).filter { seen.insert($0.key).inserted }
    }

    /// For destroy: exactly the rules bootstrap added for `cluster`, found by their description.
    public static func rulesToRevoke(groups: [EC2SecurityGroup], cluster: String) -> [IngressRule] {
        let prefix = marker(cluster: cluster) + " "
        return groups.flatMap(\.ingress).filter { $0.ruleDescription?.hasPrefix(prefix) == true }
    }
}

extension SecurityGroupPlanner.Missing {
    /// The rule as a plan shows and carries it.
    public var change: SecurityGroupRuleChange {
        SecurityGroupRuleChange(groupId: rule.groupId, ipProtocol: rule.ipProtocol, fromPort: rule.fromPort,
                                toPort: rule.toPort, source: rule.source.description,
                                ruleDescription: rule.ruleDescription ?? "", text: description)
    }
}

extension IngressRule {
    /// The rule a plan carries: its source is a group (`sg-…`) or a CIDR block.
    public init(_ change: SecurityGroupRuleChange) {
        self.init(groupId: change.groupId, ipProtocol: change.ipProtocol, fromPort: change.fromPort,
                  toPort: change.toPort,
                  source: change.source.hasPrefix("sg-") ? .group(change.source) : .cidr(change.source),
                  description: change.ruleDescription.isEmpty ? nil : change.ruleDescription)
    }
}
