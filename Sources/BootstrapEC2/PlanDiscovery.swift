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

    public func discover(_ ec2: ClusterPlan.EC2) async throws -> (hosts: [DiscoveredHost], warnings: [String]) {
        let credentials = try await AWSCredentialChain.load(environment: environment).credentials
        let client = EC2Client(region: ec2.region, credentials: credentials,
                               endpoint: ec2.endpoint.flatMap { URL(string: $0) }, transport: transport, retry: retry)
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
                           availabilityZone: h.availabilityZone, instanceType: h.instanceType)
        }
        return (hosts, r.warnings)
    }
}
