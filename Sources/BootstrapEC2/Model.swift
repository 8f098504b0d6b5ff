/// An instance as DescribeInstances tells it.
public struct EC2Instance: Sendable, Hashable {
    public var instanceId: String
    public var state: String
    public var instanceType: String?
    public var availabilityZone: String?
    public var privateIpAddress: String?
    public var publicIpAddress: String?
    public var vpcId: String?
    public var subnetId: String?
    public var tags: [String: String]
    public var securityGroupIds: [String]

    public init(instanceId: String, state: String = "running", instanceType: String? = nil,
                availabilityZone: String? = nil, privateIpAddress: String? = nil, publicIpAddress: String? = nil,
                vpcId: String? = nil, subnetId: String? = nil, tags: [String: String] = [:],
                securityGroupIds: [String] = []) {
        self.instanceId = instanceId
        self.state = state
        self.instanceType = instanceType
        self.availabilityZone = availabilityZone
        self.privateIpAddress = privateIpAddress
        self.publicIpAddress = publicIpAddress
        self.vpcId = vpcId
        self.subnetId = subnetId
        self.tags = tags
        self.securityGroupIds = securityGroupIds
    }
}

/// One ingress rule, flattened: a protocol and port range on a group, from one source (EC2 groups several
/// sources under one permission; each source has its own description).
public struct IngressRule: Sendable, Hashable, CustomStringConvertible {
    public enum Source: Sendable, Hashable, CustomStringConvertible {
        case group(String)
        case cidr(String)
        public var description: String {
            switch self {
            case .group(let g): return g
            case .cidr(let c): return c
            }
        }
    }

    public var groupId: String
    /// `tcp`, `udp`, `icmp`, a protocol number such as `4` (IP in IP), or `-1` (all).
    public var ipProtocol: String
    public var fromPort: Int?
    public var toPort: Int?
    public var source: Source
    public var ruleDescription: String?

    public init(groupId: String, ipProtocol: String, fromPort: Int? = nil, toPort: Int? = nil, source: Source,
                description: String? = nil) {
        self.groupId = groupId
        self.ipProtocol = ipProtocol
        self.fromPort = fromPort
        self.toPort = toPort
        self.source = source
        self.ruleDescription = description
    }

    /// `tcp/6443`, `tcp/2379-2380`, `udp/8472`, `proto 4`, `all`.
    public var portText: String {
        let proto = IngressRule.normalizedProtocol(ipProtocol)
        switch proto {
        case "-1": return "all traffic"
        case "tcp", "udp":
            guard let from = fromPort, let to = toPort, from != -1 else { return "\(proto)/all" }
            return from == to ? "\(proto)/\(from)" : "\(proto)/\(from)-\(to)"
        case "4": return "ipip (protocol 4)"
        default: return "protocol \(proto)"
        }
    }

    /// `sg-0abc: allow tcp/6443 from sg-0abc`
    public var description: String { "\(groupId): allow \(portText) from \(source)" }

    /// The same rule whatever its description (EC2 matches rules on these fields when revoking).
    public var key: IngressRule {
        var k = self
        k.ruleDescription = nil
        k.ipProtocol = IngressRule.normalizedProtocol(ipProtocol)
        if !["tcp", "udp", "icmp"].contains(k.ipProtocol) { k.fromPort = nil; k.toPort = nil }
        return k
    }

    static func normalizedProtocol(_ p: String) -> String {
        switch p.lowercased() {
        case "6": return "tcp"
        case "17": return "udp"
        case "1": return "icmp"
        case "ipip", "ipencap": return "4"
        case "all": return "-1"
        default: return p.lowercased()
        }
    }
}

public struct EC2SecurityGroup: Sendable, Hashable {
    public var groupId: String
    public var groupName: String
    public var vpcId: String?
    public var ingress: [IngressRule]

    public init(groupId: String, groupName: String = "", vpcId: String? = nil, ingress: [IngressRule] = []) {
        self.groupId = groupId
        self.groupName = groupName
        self.vpcId = vpcId
        self.ingress = ingress
    }
}

/// A DescribeInstances filter: `tag:Name`, `instance-state-name`, ...
public struct EC2Filter: Sendable, Hashable {
    public var name: String
    public var values: [String]
    public init(_ name: String, _ values: [String]) { self.name = name; self.values = values }
}
