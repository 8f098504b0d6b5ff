import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

@Suite struct ValidationTests {
    @Test func namesMustBeDNSLabels() {
        let r = load(edited(edited("name: demo", "name: Demo_1"), "name: worker-1", "name: worker_1"))
        #expect(has(r, path: "metadata.name", containing: "not a DNS-1123 label"))
        #expect(has(r, path: "spec.hosts[1].name", containing: "not a DNS-1123 label"))
        let long = load(edited("name: demo", "name: " + String(repeating: "a", count: 64)))
        #expect(has(long, path: "metadata.name", containing: "not a DNS-1123 label"))
    }

    @Test func duplicateHostNames() {
        let r = load(edited("name: worker-1", "name: cp-1"))
        #expect(has(r, path: "spec.hosts[1].name", containing: "duplicate host name \"cp-1\" (also spec.hosts[0])"))
    }

    @Test func duplicateAddressAndPort() throws {
        let r = load(edited("address: 10.0.1.21", "address: 10.0.1.10"))
        #expect(has(r, path: "spec.hosts[1].address", containing: "10.0.1.10:22 is already used by spec.hosts[0] (cp-1)"))
        // Same address on another SSH port is a different endpoint (a NAT gateway, say).
        _ = try plan(edited("address: 10.0.1.21", "address: 10.0.1.10\n      port: 2222"))
    }

    @Test(arguments: ["10.0.1", "10.0.1.256", "10.0.1.01", "host_name", "-bad.example.com", "1.2.3.4.5", "a..b"])
    func malformedAddresses(address: String) {
        let r = load(edited("address: 10.0.1.21", "address: \"\(address)\""))
        #expect(has(r, path: "spec.hosts[1].address", containing: "is not an IPv4 address or DNS name"))
    }

    @Test(arguments: ["fd00::1", "10.0.1.21:22"])
    func addressesWithColons(address: String) {
        let r = load(edited("address: 10.0.1.21", "address: \"\(address)\""))
        #expect(has(r, path: "spec.hosts[1].address", containing: "the port goes in port:"))
    }

    @Test(arguments: ["node-1.example.com", "Worker1.Example.COM", "localhost", "127.0.0.12"])
    func goodAddresses(address: String) throws {
        _ = try plan(edited("address: 10.0.1.21", "address: \"\(address)\""))
    }

    @Test func malformedCIDRs() {
        let r = load(edited("cni: flannel", "cni: flannel\n    podSubnet: 10.244.0.0\n    serviceSubnet: 10.96.1.0/12"))
        #expect(has(r, path: "spec.network.podSubnet", containing: "is not an IPv4 CIDR block"))
        #expect(has(r, path: "spec.network.serviceSubnet", containing: "did you mean 10.96.0.0/12"))
        let prefix = load(edited("cni: flannel", "cni: flannel\n    podSubnet: 10.0.0.0/33"))
        #expect(has(prefix, path: "spec.network.podSubnet", containing: "is not an IPv4 CIDR block"))
    }

    @Test func podAndServiceSubnetsMustNotOverlap() {
        let r = load(edited("cni: flannel", "cni: flannel\n    podSubnet: 10.96.0.0/16"))
        #expect(has(r, path: "spec.network.serviceSubnet", containing: "overlaps the pod subnet 10.96.0.0/16"))
    }

    @Test func hostAddressesMustBeOutsideTheSubnets() {
        let pod = load(edited("address: 10.0.1.21", "address: 10.244.3.4"))
        #expect(has(pod, path: "spec.hosts[1].address", containing: "inside the pod subnet 10.244.0.0/16"))
        let svc = load(edited("address: 10.0.1.21", "address: 10.100.0.9"))
        #expect(has(svc, path: "spec.hosts[1].address", containing: "inside the service subnet 10.96.0.0/12"))
    }

    @Test func flannelNeedsASlash16OrLarger() throws {
        let r = load(edited("cni: flannel", "cni: flannel\n    podSubnet: 10.244.0.0/17"))
        #expect(has(r, path: "spec.network.podSubnet", containing: "flannel needs a /16 or larger"))
        _ = try plan(edited("cni: flannel", "cni: flannel\n    podSubnet: 10.240.0.0/12"))
        // Calico is fine with a smaller block.
        _ = try plan(edited("cni: flannel", "cni: calico\n    podSubnet: 192.168.0.0/20"))
    }

    @Test func podSubnetMustHoldEveryNode() {
        let r = load(edited("cni: flannel", "cni: calico\n    podSubnet: 192.168.0.0/24\n  hostsX: 1")
            .replacingOccurrences(of: "  hostsX: 1\n", with: ""))
        #expect(has(r, path: "spec.network.podSubnet", containing: "holds 1 node ranges"))
    }

    @Test func noControlPlane() {
        let r = load(edited("role: control-plane", "role: worker"))
        #expect(has(r, path: "spec.hosts", containing: "no host has role control-plane"))
    }

    @Test func noHosts() {
        let r = load("""
            apiVersion: bootstrap.k8s.lab/v1alpha1
            kind: Cluster
            metadata: {name: x}
            spec:
              kubernetes: {version: "1.34.1"}
              hosts: []
            """)
        #expect(has(r, path: "spec.hosts", containing: "the plan has no hosts"))
    }

    @Test func severalControlPlanesNeedAnEndpoint() throws {
        let two = edited("role: worker", "role: control-plane")
        let r = load(two)
        #expect(has(r, path: "spec.kubernetes.controlPlaneEndpoint", containing: "2 control planes need a shared"))
        #expect(has(r, .warning, path: "spec.hosts", containing: "even number"))
        let withEndpoint = load(edited(two, "version: \"1.34.1\"", "version: \"1.34.1\"\n    controlPlaneEndpoint: api.x:6443"))
        #expect(withEndpoint.plan != nil, "an even number of control planes is only a warning")
        #expect(withEndpoint.diagnostics.warnings.count == 1)
    }

    @Test func badEndpointAndSANs() {
        let r = load(edited("version: \"1.34.1\"", "version: \"1.34.1\"\n    controlPlaneEndpoint: \"api.x:99999\"\n    certSANs: [ok.example.com, \"*.wild.example.com\", \"bad host\"]"))
        #expect(has(r, path: "spec.kubernetes.controlPlaneEndpoint", containing: "is not HOST:PORT"))
        #expect(has(r, path: "spec.kubernetes.certSANs[2]", containing: "\"bad host\""))
        #expect(!r.diagnostics.contains { $0.path == "spec.kubernetes.certSANs[1]" })
    }

    @Test func labelsTaintsPortsAndParallelism() {
        let yaml = edited(edited("role: worker", """
            role: worker
                  port: 70000
                  labels:
                    "example.com/tier": app
                    "bad/key/x": y
                    ok: "not ok!"
                  taints:
                    - {key: dedicated, value: gpu, effect: NoSchedule}
                    - {key: dedicated, value: cpu, effect: NoSchedule}
                    - {key: "bad key", effect: NoExecute}
            """), "cni: flannel", "cni: flannel\n  ssh:\n    port: 0") + "\n  parallelism: 0\n"
        let r = load(yaml)
        #expect(has(r, path: "spec.hosts[1].port", containing: "port 70000 is out of range"))
        #expect(has(r, path: "spec.ssh.port", containing: "port 0 is out of range"))
        #expect(has(r, path: "spec.hosts[1].labels.bad/key/x", containing: "more than one '/'"))
        #expect(has(r, path: "spec.hosts[1].labels.ok", containing: "label value \"not ok!\""))
        #expect(!r.diagnostics.contains { $0.path == "spec.hosts[1].labels.example.com/tier" })
        #expect(has(r, path: "spec.hosts[1].taints[1]", containing: "duplicate taint dedicated:NoSchedule"))
        #expect(has(r, path: "spec.hosts[1].taints[2].key", containing: "taint key \"bad key\""))
        #expect(has(r, path: "spec.parallelism", containing: "must be at least 1"))
    }

    @Test func timeoutsHaveDefaultsAndBounds() throws {
        let p = try plan(basePlanYAML)
        #expect(p.spec.timeouts == ClusterPlan.Timeouts())
        #expect(p.spec.timeouts.join == PlanDefaults.Timeout.join && p.spec.timeouts.helm == PlanDefaults.Timeout.helm)
        let raised = try plan(basePlanYAML + "\n  timeouts: { packages: 1800, join: 1200 }\n")
        #expect(raised.spec.timeouts.packages == 1800 && raised.spec.timeouts.join == 1200)
        #expect(raised.spec.timeouts.`init` == PlanDefaults.Timeout.initialize)
        #expect(PlanYAML.text(raised).contains("timeouts:\n    packages: 1800\n    init: 600\n    join: 1200\n"))
        let r = load(basePlanYAML + "\n  timeouts: { join: 5, helm: 100000, waitReady: \"soon\", install: 10 }\n")
        #expect(has(r, path: "spec.timeouts.join", containing: "must be between 30 and 86400 seconds, found 5"))
        #expect(has(r, path: "spec.timeouts.helm", containing: "found 100000"))
        #expect(r.diagnostics.contains { $0.path == "spec.timeouts.waitReady" && $0.severity == .error })
        #expect(has(r, path: "spec.timeouts.install", containing: "unknown field"))
        // A plan saved before timeouts existed still decodes, with the defaults.
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(p)) as! [String: Any]
        var spec = json["spec"] as! [String: Any]
        spec["timeouts"] = nil
        json["spec"] = spec
        let old = try JSONDecoder().decode(ClusterPlan.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.spec.timeouts == ClusterPlan.Timeouts())
    }

    @Test func manifestsMustExistRelativeToThePlan() throws {
        let yaml = basePlanYAML + "\n  manifests: [apps/a.yaml, /abs/b.yaml, apps/missing.yaml]\n"
        let r = load(yaml, files: ["/plans/apps/a.yaml", "/abs/b.yaml"])
        #expect(errors(r).count == 1)
        #expect(has(r, path: "spec.manifests[2]", containing: "\"apps/missing.yaml\" does not exist (looked for /plans/apps/missing.yaml)"))
        _ = try plan(basePlanYAML + "\n  manifests: [apps/a.yaml]\n", files: ["/plans/apps/a.yaml"])
    }

    @Test func manyMistakesAreReportedTogether() {
        let yaml = """
            apiVersion: bootstrap.k8s.lab/v1alpha1
            kind: Cluster
            metadata:
              name: Bad_Name
            spec:
              kubernetes:
                version: "1.29.0"
              network:
                cni: flannel
                podSubnet: 10.244.0.0/20
              ssh:
                prot: 22
              hosts:
                - name: cp-1
                  address: 10.0.1
                  role: control-plane
                - name: cp-1
                  address: 10.0.1.11
                  role: wroker
              manifests: [nope.yaml]
            """
        let r = load(yaml)
        #expect(r.plan == nil)
        let paths = Set(errors(r).map(\.path))
        #expect(paths.isSuperset(of: [
            "metadata.name", "spec.kubernetes.version", "spec.network.podSubnet", "spec.ssh.prot",
            "spec.hosts[0].address", "spec.hosts[1].name", "spec.hosts[1].role", "spec.manifests[0]",
        ]))
        // Reported in document order, every one with a line.
        let lines = r.diagnostics.compactMap(\.line)
        #expect(lines.count == r.diagnostics.count)
        #expect(lines == lines.sorted())
    }

    @Test func badItemsKeepLaterPathsRight() {
        let r = load(edited("    - name: cp-1", "    - just a string\n    - name: cp-1").replacingOccurrences(of: "address: 10.0.1.21", with: "address: 10.0.1"))
        #expect(has(r, path: "spec.hosts[0]", containing: "expected a mapping"))
        #expect(has(r, path: "spec.hosts[2].address", containing: "\"10.0.1\" is not an IPv4 address"))
    }

    @Test func aMissingSectionIsReportedOnce() {
        let r = load("apiVersion: bootstrap.k8s.lab/v1alpha1\nkind: Cluster\nmetadata: {name: x}\n")
        #expect(r.diagnostics.map(\.path) == ["spec"])
    }

    @Test func everyExamplePlanValidates() throws {
        let dir = repoRoot.appendingPathComponent("Plans")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(names == ["ec2-basic.yaml", "ec2-ha.yaml", "ec2-tags.yaml", "lab.yaml"])
        for name in names {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            let r = PlanLoader.load(text: text, path: name, baseDirectory: dir.path,
                                    fileExists: { FileManager.default.fileExists(atPath: $0) })
            #expect(r.plan != nil, "\(name): \(r.diagnostics)")
            #expect(r.diagnostics.isEmpty, "\(name): \(r.diagnostics)")
        }
    }

    @Test func examplePlansSayWhatTheyShould() throws {
        let dir = repoRoot.appendingPathComponent("Plans")
        func get(_ n: String) throws -> ClusterPlan {
            let text = try String(contentsOf: dir.appendingPathComponent(n), encoding: .utf8)
            return try #require(PlanLoader.load(text: text, path: n, baseDirectory: dir.path,
                                                fileExists: { FileManager.default.fileExists(atPath: $0) }).plan)
        }
        let lab = try get("lab.yaml")
        #expect(lab.name == "lab")
        #expect(lab.spec.hosts.map { "\($0.name) \($0.address) \($0.role.rawValue)" }
                == ["cp-1 127.0.0.11 control-plane", "worker-1 127.0.0.12 worker", "worker-2 127.0.0.13 worker"])
        #expect(lab.spec.network.cni == .calico && lab.spec.network.podSubnet == "10.244.0.0/16")
        #expect(lab.spec.ssh.keyPath == "/srv/bootstrap-lab/id_ed25519")
        #expect(lab.spec.addons.all.allSatisfy { $0.addon.enabled })
        #expect(lab.spec.manifests == ["apps/my-app.yaml"] && lab.spec.namespaces.map(\.name) == ["my-app"])
        let ha = try get("ec2-ha.yaml")
        #expect(ha.controlPlanes.count == 3 && ha.workers.count == 5)
        #expect(ha.spec.kubernetes.controlPlaneEndpoint == "k8s-api.internal.example:6443")
        #expect(ha.spec.network.cni == .calico)
        #expect(ha.spec.addons.all.allSatisfy { $0.addon.enabled })
        #expect(ha.spec.ssh.bastion != nil)
        let basic = try get("ec2-basic.yaml")
        #expect(basic.controlPlanes.count == 1 && basic.workers.count == 2)
        #expect(basic.spec.hosts.allSatisfy { $0.address.hasPrefix("10.0.1.") })
    }
}

@Suite struct CIDRTests {
    @Test func parsesAndChecksBlocks() {
        #expect(CIDR("10.244.0.0/16")?.prefix == 16)
        #expect(CIDR("10.244.1.0/16") == nil)
        #expect(CIDR("0.0.0.0/0")?.contains(IPv4Address("8.8.8.8")!) == true)
        let a = CIDR("10.96.0.0/12")!
        #expect(a.last.description == "10.111.255.255")
        #expect(a.contains(IPv4Address("10.100.1.1")!))
        #expect(!a.contains(IPv4Address("10.112.0.0")!))
        #expect(a.overlaps(CIDR("10.100.0.0/16")!))
        #expect(!a.overlaps(CIDR("10.244.0.0/16")!))
        #expect(CIDR("192.168.0.0/32")?.contains(IPv4Address("192.168.0.0")!) == true)
    }

    @Test func ipv4Parsing() {
        #expect(IPv4Address("255.255.255.255")?.value == UInt32.max)
        for bad in ["", "1.2.3", "1.2.3.4.", "01.2.3.4", "1.2.3.-4", "1.2.3.4444", "a.b.c.d", "1.2.3.256"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
    }

    @Test func didYouMeanPicksCloseWords() {
        #expect(didYouMean("controlPlaneEndpont", among: ["version", "controlPlaneEndpoint"]) == "controlPlaneEndpoint")
        #expect(didYouMean("Hosts", among: ["hosts", "ssh"]) == "hosts")
        #expect(didYouMean("zzzzzz", among: ["hosts", "ssh"]) == nil)
        #expect(editDistance("kitten", "sitting") == 3)
    }

    @Test func kubernetesReleaseTable() {
        #expect(KubernetesReleases.minors == ["1.33", "1.34", "1.35", "1.36"])
        #expect(KubernetesReleases.maintainedMinors == ["1.34", "1.35", "1.36"])
        #expect(KubernetesReleases.latest == "1.36.1")
        #expect(KubernetesReleases.all.count == 6 + 8 + 6 + 2)
        #expect(KubernetesReleases.resolve("v1.34.7") == .success("1.34.7"))
        // any patch of a supported minor: the package repository says whether it exists (preflight)
        #expect(KubernetesReleases.resolve("1.34.8") == .success("1.34.8"))
        #expect(KubernetesReleases.resolve("1.35.12") == .success("1.35.12"))
        #expect(KubernetesReleases.resolve("1.35") == .failure(.notPinned(minor: "1.35")))
        #expect(KubernetesReleases.resolve("1.35.x") == .failure(.malformed))
        #expect(KubernetesReleases.resolve("1.32.9") == .failure(.unsupportedMinor(minor: "1.32")))
    }
}

@Suite struct HashingTests {
    @Test func sha256IsLowerCaseHex() {
        #expect(Hashing.sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hashing.sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
