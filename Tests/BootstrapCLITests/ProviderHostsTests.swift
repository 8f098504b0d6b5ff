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

    /// The summary names each instance's addresses: the public one when it has one bootstrap does not SSH to.
    @Test func summaryShowsThePublicAddress() throws {
        let p = try plan(Self.yaml)
        var found = Self.found
        found[0].publicAddress = "203.0.113.10"
        found[1].publicAddress = "10.0.1.20"  // the same as its SSH address: not repeated
        let merged = p.addingDiscovered(found, state: nil)
        let text = ProviderHosts.summary(found, ec2: try #require(p.spec.provider?.ec2), merged: merged)
        #expect(text == """
            Hosts from EC2 (us-east-1): 2 running instances
              cp-1  i-1  control-plane  ssh 10.0.1.10, cluster 10.0.1.10, public 203.0.113.10
              i-0abc  i-0abc  worker  ssh 10.0.1.20, cluster 10.0.1.20
            """)
    }

    /// The rules a plan carries read back as the rules EC2 is asked to add.
    @Test func ruleChangesRoundTrip() {
        let missing = SecurityGroupPlanner.Missing(
            rule: IngressRule(groupId: "sg-cp", ipProtocol: "tcp", fromPort: 6443, toPort: 6443,
                              source: .cidr("198.51.100.7/32"), description: "bootstrap:demo kube-apiserver"),
            purpose: "Kubernetes API", targets: ["cp-1"], sources: ["operator 198.51.100.7/32"])
        let change = missing.change
        #expect(change.text == "sg-cp: allow tcp/6443 from 198.51.100.7/32 (Kubernetes API: cp-1 from operator 198.51.100.7/32)")
        #expect(IngressRule(change) == missing.rule)
        #expect(ProviderHosts.rulesText([change])
                == "Security groups (spec.provider.ec2.manageSecurityGroups): 1 rule to add\n  + \(change.text)\n\n")
        let fromGroup = SecurityGroupPlanner.Missing(
            rule: IngressRule(groupId: "sg-cp", ipProtocol: "4", source: .group("sg-w"), description: "bootstrap:demo calico-ipip"),
            purpose: "Calico IP-in-IP", targets: ["cp-1"], sources: ["w-1"])
        #expect(IngressRule(fromGroup.change) == fromGroup.rule)
    }
}
