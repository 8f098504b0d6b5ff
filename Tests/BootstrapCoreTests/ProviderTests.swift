import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

/// `spec.provider.ec2`: read, checked, and the instances found added to the hosts.
@Suite struct ProviderTests {
    static let yaml = """
        apiVersion: bootstrap.k8s.lab/v1alpha1
        kind: Cluster
        metadata:
          name: demo
        spec:
          kubernetes:
            version: "1.34.1"
          provider:
            ec2:
              region: eu-central-1
              endpoint: http://127.0.0.1:5440/
              sshAddress: public
              manageSecurityGroups: true
              operatorCidrs: [198.51.100.7/32, 203.0.113.0/24]
              hosts:
                - { role: control-plane, instanceIds: [i-0123456789abcdef0] }
                - role: worker
                  tags: { cluster: demo, role: worker }
        """

    @Test func readWithoutHostsAndWrittenBack() throws {
        let p = try plan(Self.yaml)
        let ec2 = try #require(p.spec.provider?.ec2)
        #expect(ec2.region == "eu-central-1" && ec2.endpoint == "http://127.0.0.1:5440/")
        #expect(ec2.sshAddress == .public && ec2.manageSecurityGroups)
        #expect(ec2.operatorCidrs == ["198.51.100.7/32", "203.0.113.0/24"])
        #expect(ec2.hosts == [.init(role: .controlPlane, instanceIds: ["i-0123456789abcdef0"]),
                              .init(role: .worker, tags: ["cluster": "demo", "role": "worker"])])
        #expect(p.spec.hosts.isEmpty)
        let again = try plan(PlanYAML.text(p))
        #expect(again.spec.provider == p.spec.provider)
        // Saved plans made before operatorCidrs existed read as none.
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(ec2)) as? [String: Any])
        json["operatorCidrs"] = nil
        let old = try JSONDecoder().decode(ClusterPlan.EC2.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.operatorCidrs.isEmpty && old.region == "eu-central-1" && old.manageSecurityGroups)
        // sshAddress defaults to private.
        #expect(try plan(Self.yaml.replacingOccurrences(of: "      sshAddress: public\n", with: ""))
            .spec.provider?.ec2?.sshAddress == .private)
    }

    @Test func badProviderFieldsAreReportedWithTheirPaths() {
        let r = load(Self.yaml
            .replacingOccurrences(of: "region: eu-central-1", with: "region: Frankfurt")
            .replacingOccurrences(of: "endpoint: http://127.0.0.1:5440/", with: "endpoint: ftp://x")
            .replacingOccurrences(of: "sshAddress: public", with: "sshAddress: elastic")
            .replacingOccurrences(of: "instanceIds: [i-0123456789abcdef0]", with: "instanceIds: [i-xyz], tags: {a: b}")
            .replacingOccurrences(of: "[198.51.100.7/32, 203.0.113.0/24]", with: "[198.51.100.7, 203.0.113.9/24]"))
        #expect(has(r, path: "spec.provider.ec2.region", containing: "\"Frankfurt\" is not an AWS region name"))
        #expect(has(r, path: "spec.provider.ec2.endpoint", containing: "is not an http(s) URL"))
        #expect(has(r, path: "spec.provider.ec2.sshAddress", containing: "\"elastic\" is not a valid sshAddress"))
        #expect(has(r, path: "spec.provider.ec2.hosts[0]", containing: "has both tags and instanceIds"))
        #expect(has(r, path: "spec.provider.ec2.hosts[0].instanceIds[0]", containing: "\"i-xyz\" is not an instance id"))
        #expect(has(r, path: "spec.provider.ec2.operatorCidrs[0]", containing: "\"198.51.100.7\" is not an IPv4 CIDR block"))
        #expect(has(r, path: "spec.provider.ec2.operatorCidrs[1]", containing: "did you mean 203.0.113.0/24?"))
        #expect(errors(r).first { $0.path == "spec.provider.ec2.operatorCidrs[1]" }?.line == 14)
        let unknown = load(Self.yaml.replacingOccurrences(of: "region: eu-central-1", with: "region: eu-central-1\n      zone: a"))
        #expect(unknown.plan == nil)
        #expect(errors(unknown).contains { $0.path.hasPrefix("spec.provider.ec2") })
        // Without a provider, hosts stay required.
        let none = load(Self.yaml.components(separatedBy: "  provider:")[0])
        #expect(errors(none).contains { $0.path == "spec.hosts" })
    }

    @Test func foundInstancesJoinTheHostsControlPlanesFirstTheInitOneFirstOfAll() throws {
        let p = try plan(Self.yaml)
        let found = [
            DiscoveredHost(name: "w-b", role: .worker, address: "203.0.113.2", privateAddress: "10.0.1.2", instanceId: "i-2"),
            DiscoveredHost(name: "cp-b", role: .controlPlane, address: "203.0.113.4", privateAddress: "10.0.1.4", instanceId: "i-4"),
            DiscoveredHost(name: "cp-a", role: .controlPlane, address: "203.0.113.3", privateAddress: "10.0.1.3", instanceId: "i-3"),
            DiscoveredHost(name: "w-a", role: .worker, address: "203.0.113.1", privateAddress: "10.0.1.1", instanceId: "i-1"),
        ]
        let merged = p.addingDiscovered(found, state: nil)
        #expect(merged.spec.hosts.map(\.name) == ["cp-a", "cp-b", "w-a", "w-b"])
        #expect(merged.spec.hosts[0].instanceId == "i-3" && merged.spec.hosts[0].address == "203.0.113.3"
                && merged.spec.hosts[0].privateAddress == "10.0.1.3")
        #expect(merged.spec.hosts.allSatisfy { $0.publicAddress == nil })
        var s = ClusterState(name: "demo", toolVersion: "t")
        s.cluster.initializedOn = "cp-b"
        #expect(p.addingDiscovered(found, state: s).spec.hosts.map(\.name) == ["cp-b", "cp-a", "w-a", "w-b"])

        // Recorded with their instance ids; a vanished instance is a removal, a new one an addition.
        let applied = appliedState(merged)
        #expect(applied.hosts["w-a"]?.instanceId == "i-1")
        let later = p.addingDiscovered(found.filter { $0.name != "w-b" } + [
            DiscoveredHost(name: "w-c", role: .worker, address: "203.0.113.5", privateAddress: "10.0.1.5", instanceId: "i-5"),
        ], state: applied)
        let changes = ApplyPlan.make(plan: later, state: applied).changes.changes.filter { $0.subject == .host }
        #expect(changes.map { "\($0.action.symbol) \($0.name)" } == ["+ w-c", "- w-b"])
    }

    /// An instance's public address is carried to the host and its record, and named in the API certificate;
    /// it changing is no change of the plan (the address bootstrap uses is what counts).
    @Test func publicAddressCarriedAndInTheCertificate() throws {
        let p = try plan(Self.yaml)
        let found = [DiscoveredHost(name: "cp-1", role: .controlPlane, address: "10.0.1.3", privateAddress: "10.0.1.3",
                                    instanceId: "i-3", publicAddress: "203.0.113.3")]
        let merged = p.addingDiscovered(found, state: nil)
        let host = merged.spec.hosts[0]
        #expect(host.publicAddress == "203.0.113.3")
        let applied = appliedState(merged)
        #expect(applied.hosts["cp-1"]?.publicAddress == "203.0.113.3")
        let config = try KubeadmConfig.initConfig(plan: merged, host: host, token: Secret("abcdef.0123456789abcdef"),
                                                  certificateKey: Secret(String(repeating: "a", count: 64)))
        #expect(config.contains("- 203.0.113.3\n"), "\(config)")
        var moved = found
        moved[0].publicAddress = "198.51.100.99"
        let again = p.addingDiscovered(moved, state: applied)
        #expect(ApplyPlan.make(plan: again, state: applied).changes.changes.isEmpty)
    }

    @Test func instanceMetadataGivesLabelsAndTheProviderID() throws {
        let md = try #require(NodeRecipes.parseInstanceMetadata("""
            imds.instance-id=i-0abc
            imds.instance-type=t3.large
            imds.placement/availability-zone=eu-central-1b
            imds.placement/region=eu-central-1
            """))
        #expect(md.providerID == "aws:///eu-central-1b/i-0abc")
        #expect(NodeRecipes.parseInstanceMetadata("") == nil)  // no metadata service: nothing made up
        var p = try plan(Self.yaml).addingDiscovered([
            DiscoveredHost(name: "cp-1", role: .controlPlane, address: "10.0.1.3", privateAddress: "10.0.1.3", instanceId: "i-0abc"),
        ], state: nil)
        p.spec.hosts[0].labels = ["topology.kubernetes.io/zone": "mine"]
        var f = HostFacts(hostname: "h", osID: "ubuntu", osVersion: "22.04", architecture: "amd64", cpus: 2,
                          memoryMB: 4096, swapOn: false, machineID: "m", productUUID: "u")
        f.instance = md
        let host = p.resolvingPrivateAddresses(state: nil, facts: ["cp-1": f]).spec.hosts[0]
        #expect(host.labels == ["topology.kubernetes.io/zone": "mine", "topology.kubernetes.io/region": "eu-central-1",
                                "node.kubernetes.io/instance-type": "t3.large"])
        #expect(host.providerID == "aws:///eu-central-1b/i-0abc")
        let config = try KubeadmConfig.joinConfig(plan: p, host: host, token: Secret("abcdef.0123456789abcdef"),
                                                  caCertHash: "sha256:00", certificateKey: nil)
        #expect(config.contains("providerID: aws:///eu-central-1b/i-0abc"))
        // A host the plan lists keeps no metadata labels, whatever its facts say.
        let own = try plan(basePlanYAML).resolvingPrivateAddresses(state: nil, facts: ["cp-1": f]).spec.hosts[0]
        #expect(own.labels.isEmpty && own.providerID == nil)
    }
}
