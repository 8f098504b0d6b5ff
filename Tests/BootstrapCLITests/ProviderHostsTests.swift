@testable import BootstrapCLI
@testable import BootstrapCore
import ArgumentParser
import BootstrapEC2
import BootstrapTestSupport
import Foundation
import Testing

/// `plan`/`apply` add the hosts of `spec.provider.ec2` through a `ProviderAccount`; here a fake one.
@Suite struct ProviderHostsTests {
    struct Fake: ProviderAccount {
        var hosts: [DiscoveredHost] = []
        var failure: String?
        /// Its security groups allow everything the cluster needs.
        func missingRules(_ ec2: ClusterPlan.EC2, hosts: [DiscoveredHost], plan: ClusterPlan) async throws
            -> [SecurityGroupPlanner.Missing] { [] }
        struct Failure: Error, CustomStringConvertible { var description: String }
        func discover(_ ec2: ClusterPlan.EC2) async throws -> (hosts: [DiscoveredHost], warnings: [String]) {
            if let failure { throw Failure(description: failure) }
            return (hosts, [])
        }
    }

    static let yaml = basePlanYAML.components(separatedBy: "  hosts:")[0] + """
          provider:
            ec2:
              region: us-east-1
              hosts: [{ role: control-plane, tags: { role: cp } }, { role: worker, tags: { role: worker } }]
        """

    static let found = [
        DiscoveredHost(name: "cp-1", role: .controlPlane, address: "10.0.1.10", privateAddress: "10.0.1.10", instanceId: "i-1"),
        DiscoveredHost(name: "i-0abc", role: .worker, address: "10.0.1.20", privateAddress: "10.0.1.20", instanceId: "i-0abc"),
    ]

    @Test func theInstancesBecomeHosts() async throws {
        let p = try plan(Self.yaml)
        let merged = try await ProviderHosts.resolve(p, state: nil, account: Fake(hosts: Self.found))
        #expect(merged.spec.hosts.map(\.name) == ["cp-1", "i-0abc"])
        #expect(merged.spec.hosts.map(\.instanceId) == ["i-1", "i-0abc"])
        // A plan without a provider is left alone (and the discoverer never asked).
        let plain = try plan(basePlanYAML)
        #expect(try await ProviderHosts.resolve(plain, state: nil, account: Fake(failure: "asked")) == plain)
    }

    @Test func anEC2FailureIsExit1AndBadInstancesExit2() async throws {
        let p = try plan(Self.yaml)
        await #expect(throws: Exit.failure) {
            _ = try await ProviderHosts.resolve(p, state: nil, account: Fake(failure: "AuthFailure"))
        }
        // Only workers: no control plane.
        await #expect(throws: Exit.badInput) {
            _ = try await ProviderHosts.resolve(p, state: nil, account: Fake(hosts: [Self.found[1]]))
        }
        // A Name tag that is no DNS-1123 label.
        var bad = Self.found
        bad[0].name = "Control Plane"
        await #expect(throws: Exit.badInput) {
            _ = try await ProviderHosts.resolve(p, state: nil, account: Fake(hosts: bad))
        }
    }
}
