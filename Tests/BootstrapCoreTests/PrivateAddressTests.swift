import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

/// `hosts[].privateAddress`: the address the cluster uses, apart from the one bootstrap reaches the host by.
@Suite struct PrivateAddressTests {
    /// cp-1 reached by a DNS name, worker-1 by a public address with its private one given.
    static let yaml = basePlanYAML
        .replacingOccurrences(of: "address: 10.0.1.10", with: "address: cp-1.example.com")
        .replacingOccurrences(of: "address: 10.0.1.21", with: "address: 203.0.113.21\n      privateAddress: 10.0.1.21")

    func facts(_ address: String?) -> HostFacts {
        HostFacts(hostname: "h", osID: "ubuntu", osVersion: "22.04", architecture: "amd64", cpus: 2, memoryMB: 4096,
                  swapOn: false, machineID: "m", productUUID: "u", defaultAddress: address)
    }

    @Test func loadedValidatedAndWrittenBack() throws {
        let p = try plan(Self.yaml)
        #expect(p.spec.hosts.map(\.privateAddress) == [nil, "10.0.1.21"])
        #expect(PlanYAML.text(p).contains("privateAddress: 10.0.1.21"))
    }

    @Test func aDNSNameIsRefusedAsPrivateAddress() {
        let r = load(Self.yaml.replacingOccurrences(of: "privateAddress: 10.0.1.21", with: "privateAddress: w.example.com"))
        #expect(has(r, path: "spec.hosts[1].privateAddress", containing: "\"w.example.com\" is not an IPv4 address"))
    }

    @Test func duplicateOrInsideASubnetIsRefused() {
        let twice = Self.yaml.replacingOccurrences(of: "address: cp-1.example.com",
                                                   with: "address: cp-1.example.com\n      privateAddress: 10.0.1.21")
        #expect(has(load(twice), path: "spec.hosts[1].privateAddress", containing: "already the privateAddress of spec.hosts[0]"))
        let inPods = Self.yaml.replacingOccurrences(of: "privateAddress: 10.0.1.21", with: "privateAddress: 10.244.0.9")
        #expect(has(load(inPods), path: "spec.hosts[1].privateAddress", containing: "inside the pod subnet"))
    }

    @Test func kubeadmGetsTheClusterAddressNeverTheDNSName() throws {
        let p = try plan(Self.yaml).resolvingPrivateAddresses(state: nil, facts: ["cp-1": facts("10.0.1.10")])
        let cp = p.spec.hosts[0], worker = p.spec.hosts[1]
        #expect(cp.privateAddress == "10.0.1.10")
        let initText = try KubeadmConfig.initConfig(plan: p, host: cp, token: Secret("abcdef.0123456789abcdef"),
                                                    certificateKey: Secret(String(repeating: "a", count: 64)))
        #expect(initText.contains("advertiseAddress: 10.0.1.10"))
        #expect(!initText.contains("advertiseAddress: cp-1.example.com"))
        #expect(initText.contains("name: node-ip\n    value: 10.0.1.10"), "\(initText)")
        #expect(initText.contains("- cp-1.example.com"))  // the certificate still names the operator's way in
        #expect(p.apiEndpoint == "cp-1.example.com:6443")
        #expect(p.joinEndpoint == "10.0.1.10:6443")
        let join = try KubeadmConfig.joinConfig(plan: p, host: worker, token: Secret("abcdef.0123456789abcdef"),
                                                caCertHash: "sha256:00", certificateKey: nil)
        #expect(join.contains("apiServerEndpoint: 10.0.1.10:6443"))
        #expect(join.contains("value: 10.0.1.21"))
    }

    @Test func unknownUntilFactsThenRecorded() throws {
        let p = try plan(Self.yaml)
        #expect(p.resolvingPrivateAddresses(state: nil).spec.hosts[0].privateAddress == nil)
        // The state's record wins over fresh facts: a node keeps the address it was made with.
        var s = appliedState(p.resolvingPrivateAddresses(state: nil, facts: ["cp-1": facts("10.0.1.10")]))
        #expect(s.hosts["cp-1"]?.privateAddress == "10.0.1.10")
        #expect(p.resolvingPrivateAddresses(state: s, facts: ["cp-1": facts("10.0.9.9")]).spec.hosts[0].privateAddress
                == "10.0.1.10")
        // A record from before privateAddress existed: the node advertises its SSH address.
        s.hosts["worker-1"]?.privateAddress = nil
        let old = try plan(basePlanYAML)
        var oldState = appliedState(old)
        oldState.hosts["worker-1"]?.facts = facts("10.0.7.7")
        #expect(old.resolvingPrivateAddresses(state: oldState).spec.hosts[1].privateAddress == "10.0.1.21")
        #expect(ApplyPlan.make(plan: old, state: oldState).changes.changes.isEmpty)
    }

    @Test func changingThePrivateAddressIsAReplace() throws {
        let p = try plan(Self.yaml)
        let s = appliedState(p.resolvingPrivateAddresses(state: nil, facts: ["cp-1": facts("10.0.1.10")]))
        #expect(ApplyPlan.make(plan: p, state: s).changes.changes.isEmpty)
        let moved = try plan(Self.yaml.replacingOccurrences(of: "privateAddress: 10.0.1.21", with: "privateAddress: 10.0.1.22"))
        let ap = ApplyPlan.make(plan: moved, state: s)
        #expect(ap.removals == ["worker-1"])
        let change = try #require(ap.changes.changes.first { $0.subject == .host && $0.name == "worker-1" })
        #expect(change.action == .replace)
        #expect(change.reasons.contains("privateAddress changed 10.0.1.21 → 10.0.1.22 forces replacement"))
    }

    @Test func theFactsReadTheDefaultRoutesSourceAddress() async throws {
        let bin = NSTemporaryDirectory() + "bootstrap-facts-ip-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: bin) }
        let ip = """
            #!/bin/sh
            case "$*" in
              "-4 route show default") echo "default via 172.31.0.1 dev ens5 proto dhcp src 172.31.5.10 metric 100" ;;
            esac
            """
        #expect(FileManager.default.createFile(atPath: "\(bin)/ip", contents: Data(ip.utf8), attributes: [.posixPermissions: 0o755]))
        for tool in ["uname", "awk", "nproc"] {
            guard let real = ["/usr/bin/\(tool)", "/bin/\(tool)"].first(where: FileManager.default.isExecutableFile) else { continue }
            try FileManager.default.createSymbolicLink(atPath: "\(bin)/\(tool)", withDestinationPath: real)
        }
        let ran = try await Program.runAsync("/usr/bin/env", ["PATH=\(bin)", "/bin/sh", "-c", NodeRecipes.facts.script])
        let f = try #require(NodeRecipes.parseFacts(ran.stdout), "\(ran.stdout)")
        #expect(f.defaultAddress == "172.31.5.10")
        // No default route: unknown, not a made-up address.
        #expect(NodeRecipes.parseFacts("os.id=ubuntu\ndefault.address=\n")?.defaultAddress == nil)
    }
}
