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

    /// The rules the cluster needs between the instances found that none of their security groups allows
    /// (DescribeSecurityGroups). The operator's own address is not known here: 22 and 6443 from it are not
    /// checked.
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
        return SecurityGroupPlanner.missingRules(members: members, groups: groups, cni: cni, operatorAddress: nil,
                                                 cluster: plan.name)
    }

    /// Adds `rules` (AuthorizeSecurityGroupIngress), each marked as bootstrap's in its description.
    public func authorize(_ ec2: ClusterPlan.EC2, _ rules: [IngressRule]) async throws {
        guard !rules.isEmpty else { return }
        try await client(ec2).authorizeIngress(rules)
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
                           securityGroupIds: h.securityGroupIds)
        }
        return (hosts, r.warnings)
    }
}
