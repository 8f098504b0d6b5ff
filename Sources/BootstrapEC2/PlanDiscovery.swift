import BootstrapCore
import Foundation

/// `spec.provider.ec2` resolved with DescribeInstances: the credentials chain, one call per selector
/// (paginated, running instances only), then `HostDiscovery.resolve`.
public struct EC2HostDiscoverer: HostDiscoverer {
    let environment: [String: String]
    let transport: any HTTPTransport
    let retry: RetryPolicy

    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                transport: any HTTPTransport = URLSessionTransport(), retry: RetryPolicy = .standard) {
        self.environment = environment
        self.transport = transport
        self.retry = retry
    }

    public struct DiscoveryError: Error, CustomStringConvertible, Sendable {
        public var problems: [String]
        public var description: String {
            "spec.provider.ec2: " + (problems.count == 1 ? problems[0]
                                     : "\n" + problems.map { "  \($0)" }.joined(separator: "\n"))
        }
    }

    func client(_ ec2: ClusterPlan.EC2) async throws -> EC2Client {
        let credentials = try await AWSCredentialChain.load(environment: environment).credentials
        return EC2Client(region: ec2.region, credentials: credentials,
                         endpoint: ec2.endpoint.flatMap { URL(string: $0) }, transport: transport, retry: retry)
    }

    /// The rules the cluster needs between the instances found, and from `operatorCidrs` (SSH, the API, the
    /// add-ons' NodePorts), that none of their security groups allows (DescribeSecurityGroups).
    public func missingRules(_ ec2: ClusterPlan.EC2, hosts: [DiscoveredHost], plan: ClusterPlan) async throws
        -> [SecurityGroupPlanner.Missing]
    {
        let members = hosts.map {
            SecurityGroupPlanner.Member(name: $0.name, controlPlane: $0.role == .controlPlane,
                                        privateAddress: $0.privateAddress, securityGroupIds: $0.securityGroupIds)
        }
        let ids = Array(Set(members.flatMap(\.securityGroupIds))).sorted()
        guard !ids.isEmpty else { return [] }
        let groups = try await client(ec2).describeSecurityGroups(groupIds: ids)
        let net = plan.spec.network
        let cni: CNIPorts = net.cni == .flannel ? .flannel : (net.calicoEncapsulation == .vxlan ? .calicoVXLAN : .calicoBGP)
        var nodePorts: [String: Int] = [:]
        for r in Releases.desired(for: plan) { nodePorts.merge(r.nodePorts) { a, _ in a } }
        return SecurityGroupPlanner.missingRules(members: members, groups: groups, cni: cni,
                                                 operatorCidrs: ec2.operatorCidrs, nodePorts: nodePorts,
                                                 cluster: plan.name)
    }

    /// Adds those of `rules` their groups do not have yet (AuthorizeSecurityGroupIngress; a saved plan's rule
    /// may have been added since), each once, marked as bootstrap's in its description; returns them.
    public func authorize(_ ec2: ClusterPlan.EC2, _ rules: [IngressRule]) async throws -> [IngressRule] {
        guard !rules.isEmpty else { return [] }
        let client = try await client(ec2)
        let groups = try await client.describeSecurityGroups(groupIds: Array(Set(rules.map(\.groupId))).sorted())
        let have = Set(groups.flatMap(\.ingress).map(\.key))
        var seen = Set<IngressRule>()
        let add = rules.filter { !have.contains($0.key) && seen.insert($0.key).inserted }
        if !add.isEmpty { try await client.authorizeIngress(add) }
        return add
    }

    /// For destroy: removes exactly the rules bootstrap added for `cluster` (found by their description) from
    /// the groups of the instances; returns them.
    public func revokeOwnRules(_ ec2: ClusterPlan.EC2, instanceIds: [String], cluster: String) async throws -> [IngressRule] {
        guard !instanceIds.isEmpty else { return [] }
        let client = try await client(ec2)
        let instances = try await client.describeInstances(instanceIds: instanceIds)
        let ids = Array(Set(instances.flatMap(\.securityGroupIds))).sorted()
        guard !ids.isEmpty else { return [] }
        let rules = SecurityGroupPlanner.rulesToRevoke(groups: try await client.describeSecurityGroups(groupIds: ids),
                                                       cluster: cluster)
        if !rules.isEmpty { try await client.revokeIngress(rules) }
        return rules
    }

    public func discover(_ ec2: ClusterPlan.EC2) async throws -> (hosts: [DiscoveredHost], warnings: [String]) {
        let client = try await client(ec2)
        var matches: [(selector: HostSelector, instances: [EC2Instance])] = []
        for s in ec2.hosts {
            let selector = s.instanceIds.isEmpty ? HostSelector(role: s.role.rawValue, tags: s.tags)
                                                 : HostSelector(role: s.role.rawValue, instanceIds: s.instanceIds)
            let found = try await client.describeInstances(filters: selector.filters, instanceIds: selector.instanceIds)
            matches.append((selector, found))
        }
        let r = HostDiscovery.resolve(matches, address: ec2.sshAddress == .public ? .public : .private)
        if !r.errors.isEmpty { throw DiscoveryError(problems: r.errors) }
        let hosts = r.hosts.map { h in
            DiscoveredHost(name: h.name, role: ClusterPlan.Role(rawValue: h.role) ?? .worker, address: h.sshAddress,
                           privateAddress: h.privateAddress, instanceId: h.instanceId,
                           availabilityZone: h.availabilityZone, instanceType: h.instanceType,
                           securityGroupIds: h.securityGroupIds, publicAddress: h.publicAddress)
        }
        return (hosts, r.warnings)
    }
}
