import Foundation

extension ClusterPlan {
    /// `spec.provider`: where hosts come from besides `spec.hosts`.
    public struct Provider: Sendable, Hashable, Codable {
        public var ec2: EC2?
        public init(ec2: EC2? = nil) { self.ec2 = ec2 }
    }

    /// Which of an instance's addresses bootstrap connects to over SSH.
    public enum SSHAddress: String, Sendable, Hashable, Codable, CaseIterable {
        case `public`, `private`
    }

    /// `spec.provider.ec2`: hosts found with DescribeInstances (running instances only).
    public struct EC2: Sendable, Hashable, Codable {
        public var region: String
        /// The EC2 API's URL (a VPC endpoint, an emulator); nil: `https://ec2.REGION.amazonaws.com`.
        public var endpoint: String?
        public var hosts: [HostSelector]
        public var sshAddress: SSHAddress
        /// Add the security-group rules the cluster needs (and remove them on destroy).
        public var manageSecurityGroups: Bool
        /// Where the operator runs bootstrap and kubectl from: 22/tcp to every host, 6443/tcp and the add-ons'
        /// NodePorts to the control planes must be open from each block. Empty: nothing from the operator is
        /// checked.
        public var operatorCidrs: [String]

        public init(region: String, endpoint: String? = nil, hosts: [HostSelector], sshAddress: SSHAddress = .private,
                    manageSecurityGroups: Bool = false, operatorCidrs: [String] = []) {
            self.operatorCidrs = operatorCidrs
            self.region = region
            self.endpoint = endpoint
            self.hosts = hosts
            self.sshAddress = sshAddress
            self.manageSecurityGroups = manageSecurityGroups
        }
    }

    /// Instances of one role: those carrying every tag given, or the instances named.
    public struct HostSelector: Sendable, Hashable, Codable {
        public var role: Role
        public var tags: [String: String]
        public var instanceIds: [String]
        public init(role: Role, tags: [String: String] = [:], instanceIds: [String] = []) {
            self.role = role
            self.tags = tags
            self.instanceIds = instanceIds
        }
    }
}

/// A host a provider found, to be added to the plan's hosts.
public struct DiscoveredHost: Sendable, Hashable {
    public var name: String
    public var role: ClusterPlan.Role
    /// Where bootstrap connects over SSH (`sshAddress`).
    public var address: String
    public var privateAddress: String
    /// The instance's public IPv4 address, if it has one: what `show` prints for the operator to reach.
    public var publicAddress: String?
    public var instanceId: String
    public var availabilityZone: String?
    public var instanceType: String?
    public var securityGroupIds: [String]

    public init(name: String, role: ClusterPlan.Role, address: String, privateAddress: String, instanceId: String,
                availabilityZone: String? = nil, instanceType: String? = nil, securityGroupIds: [String] = [],
                publicAddress: String? = nil) {
        self.securityGroupIds = securityGroupIds
        self.publicAddress = publicAddress
        self.name = name
        self.role = role
        self.address = address
        self.privateAddress = privateAddress
        self.instanceId = instanceId
        self.availabilityZone = availabilityZone
        self.instanceType = instanceType
    }
}

/// Finds the hosts of `spec.provider.ec2` (the CLI gives the EC2 one; tests give a fake).
public protocol HostDiscoverer: Sendable {
    /// The running instances the selectors choose, and warnings (a tag selector that matched nothing).
    func discover(_ ec2: ClusterPlan.EC2) async throws -> (hosts: [DiscoveredHost], warnings: [String])
}

extension ClusterPlan {
    /// The plan with `found` added to its hosts: control planes first, the one that ran `kubeadm init`
    /// (recorded in `state`) before the others, then by name; then workers by name. The plan's own hosts
    /// stay first, as written.
    public func addingDiscovered(_ found: [DiscoveredHost], state: ClusterState?) -> ClusterPlan {
        let first = state?.cluster.initializedOn
        let ordered = found.sorted { a, b in
            func key(_ h: DiscoveredHost) -> (Int, Int, String) {
                (h.role == .controlPlane ? 0 : 1, h.name == first ? 0 : 1, h.name)
            }
            return key(a) < key(b)
        }
        var out = self
        for h in ordered {
            var host = Host(name: h.name, address: h.address, role: h.role, privateAddress: h.privateAddress)
            host.instanceId = h.instanceId
            host.publicAddress = h.publicAddress
            out.spec.hosts.append(host)
        }
        return out
    }
}

extension ClusterPlan.EC2 {
    /// Saved plans (`plan --out`) made before `operatorCidrs` existed have none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(region: try c.decode(String.self, forKey: .region),
                  endpoint: try c.decodeIfPresent(String.self, forKey: .endpoint),
                  hosts: try c.decode([ClusterPlan.HostSelector].self, forKey: .hosts),
                  sshAddress: try c.decode(ClusterPlan.SSHAddress.self, forKey: .sshAddress),
                  manageSecurityGroups: try c.decode(Bool.self, forKey: .manageSecurityGroups),
                  operatorCidrs: try c.decodeIfPresent([String].self, forKey: .operatorCidrs) ?? [])
    }
}

/// A security-group ingress rule bootstrap adds (`spec.provider.ec2.manageSecurityGroups`): as `plan` shows it,
/// `plan --json` lists it and a saved plan carries it to `apply`.
public struct SecurityGroupRuleChange: Sendable, Hashable, Codable {
    public var groupId: String
    /// `tcp`, `udp`, a protocol number (`4`), or `-1`.
    public var ipProtocol: String
    public var fromPort: Int?
    public var toPort: Int?
    /// A security group id (`sg-…`) or a CIDR block.
    public var source: String
    /// The rule's description in EC2, which marks it as bootstrap's: `bootstrap:CLUSTER PURPOSE`.
    public var ruleDescription: String
    /// `sg-0abc: allow tcp/6443 from sg-0def (Kubernetes API: cp-1 from worker-1)`
    public var text: String

    public init(groupId: String, ipProtocol: String, fromPort: Int?, toPort: Int?, source: String,
                ruleDescription: String, text: String) {
        self.groupId = groupId
        self.ipProtocol = ipProtocol
        self.fromPort = fromPort
        self.toPort = toPort
        self.source = source
        self.ruleDescription = ruleDescription
        self.text = text
    }
}
