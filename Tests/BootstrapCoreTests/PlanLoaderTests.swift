import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

@Suite struct PlanLoaderTests {
    @Test func validPlanGetsDefaults() throws {
        let p = try plan(basePlanYAML)
        #expect(p.name == "demo")
        #expect(p.spec.kubernetes.version == "1.34.1")
        #expect(p.spec.network.podSubnet == "10.244.0.0/16")
        #expect(p.spec.network.serviceSubnet == "10.96.0.0/12")
        #expect(p.spec.network.dnsDomain == "cluster.local")
        #expect(p.spec.ssh.port == 22)
        #expect(p.spec.ssh.user == "ubuntu")
        #expect(p.spec.ssh.hostKeyPolicy == .strict)
        #expect(p.spec.parallelism == PlanDefaults.parallelism)
        #expect(p.spec.hosts.map(\.name) == ["cp-1", "worker-1"])
        #expect(p.spec.hosts[1].role == .worker)
        #expect(p.source.path == "plan.yaml")
        #expect(p.source.baseDirectory == "/plans")
        #expect(p.spec.addons.all.allSatisfy { !$0.addon.enabled })
    }

    /// One source of truth: what the loader fills in for a field the plan leaves out is what `ClusterPlan`'s
    /// initialisers default to (they used to say parallelism 20 where the loader said 10).
    @Test func theInitialisersDefaultToPlanDefaults() throws {
        let p = try plan(basePlanYAML)
        let spec = ClusterPlan.Spec(kubernetes: p.spec.kubernetes, hosts: p.spec.hosts)
        #expect(spec.parallelism == PlanDefaults.parallelism)
        #expect(p.spec.parallelism == PlanDefaults.parallelism)
        #expect(spec.network == p.spec.network)
        #expect(spec.ssh == p.spec.ssh)
        #expect(spec.timeouts == p.spec.timeouts)
        #expect(spec.containerRuntime == p.spec.containerRuntime)
        #expect(ClusterPlan.Bastion(address: "jump", user: "u", keyPath: "k").port == PlanDefaults.sshPort)
    }

    @Test func calicoGetsItsOwnDefaultPodSubnet() throws {
        let p = try plan(edited("cni: flannel", "cni: calico"))
        #expect(p.spec.network.podSubnet == "192.168.0.0/16")
        #expect(p.spec.network.calicoEncapsulation == .vxlan)
    }

    @Test func jsonPlansLoadToo() throws {
        let json = """
            {"apiVersion": "bootstrap.k8s.lab/v1alpha1", "kind": "Cluster", "metadata": {"name": "j"},
             "spec": {"kubernetes": {"version": "1.33.2"},
                      "hosts": [{"name": "cp-1", "address": "10.0.0.5", "role": "control-plane", "port": 2222}]}}
            """
        let p = try plan(json)
        #expect(p.name == "j")
        #expect(p.spec.hosts[0].port == 2222)
        #expect(p.ssh(for: p.spec.hosts[0]).port == 2222)
    }

    @Test func leadingVIsAcceptedAndNormalised() throws {
        let p = try plan(edited("version: \"1.34.1\"", "version: v1.34.1"))
        #expect(p.spec.kubernetes.version == "1.34.1")
    }

    @Test(arguments: [
        ("1.34", "names a minor release"),
        ("1.30.1", "Kubernetes 1.30 is not supported"),
        ("1.34.-1", "is not a Kubernetes version"),
        ("one.two", "is not a Kubernetes version"),
        ("1.34.1.5", "is not a Kubernetes version"),
    ])
    func badVersionsAreRefused(version: String, message: String) {
        let r = load(edited("version: \"1.34.1\"", "version: \"\(version)\""))
        #expect(r.plan == nil)
        #expect(has(r, path: "spec.kubernetes.version", containing: message))
    }

    @Test func unquotedMinorIsCheckedAsAVersionNotRefusedAsANumber() {
        let r = load(edited("version: \"1.34.1\"", "version: 1.33"))
        #expect(has(r, path: "spec.kubernetes.version", containing: "names a minor release"))
        let d = r.diagnostics.first { $0.path == "spec.kubernetes.version" }
        #expect(d?.expected == "1.33.PATCH, a patch release the hosts' package repository has (like 1.33.5)")
    }

    @Test func anyPatchOfASupportedMinorPassesValidation() throws {
        // whether 1.34.99 exists is the package repository's to say, in preflight
        let p = try plan(edited("version: \"1.34.1\"", "version: \"1.34.99\""))
        #expect(p.spec.kubernetes.version == "1.34.99")
    }

    @Test func diagnosticsCarryLineAndColumn() {
        let r = load(edited("address: 10.0.1.21", "address: 10.0.1"))
        let d = r.diagnostics.first { $0.path == "spec.hosts[1].address" }
        #expect(d?.line == 15)
        #expect(d?.column == 16)
        #expect(d?.rendered(file: "plan.yaml")
                == "plan.yaml:15:16: error: spec.hosts[1].address: \"10.0.1\" is not an IPv4 address or DNS name (expected an IPv4 address like 10.0.1.10 or a DNS name)")
    }

    @Test func unknownKeysGetADidYouMean() {
        let r = load(edited("    version: \"1.34.1\"", "    version: \"1.34.1\"\n    controlPlaneEndpont: api:6443"))
        let d = r.diagnostics.first { $0.path == "spec.kubernetes.controlPlaneEndpont" }
        #expect(d?.message.contains("did you mean \"controlPlaneEndpoint\"") == true)
        #expect(d?.line == 8)
        let top = load(basePlanYAML + "\nspecc: {}\n")
        #expect(has(top, path: "specc", containing: "did you mean \"spec\""))
        let far = load(edited("role: worker", "role: worker\n      colour: blue"))
        #expect(has(far, path: "spec.hosts[1].colour", containing: "unknown field"))
        #expect(far.diagnostics.first { $0.path == "spec.hosts[1].colour" }?.message.contains("did you mean") == false)
    }

    @Test func wrongTypesAreReported() {
        let yaml = edited(edited("cni: flannel", "cni: flannel\n  ssh:\n    port: \"22\"\n    connectTimeout: [1]"),
                          "role: worker", "role: worker\n      labels: [a, b]")
        let r = load(yaml + "\n  parallelism: lots\n  manifests: {a: b}\n")
        #expect(has(r, path: "spec.ssh.port", containing: "expected an integer, found \"22\""))
        #expect(has(r, path: "spec.ssh.connectTimeout", containing: "expected an integer, found a list"))
        #expect(has(r, path: "spec.hosts[1].labels", containing: "expected a mapping of strings, found a list"))
        #expect(has(r, path: "spec.parallelism", containing: "expected an integer"))
        #expect(has(r, path: "spec.manifests", containing: "expected a list, found a mapping"))
        let spec = load("apiVersion: bootstrap.k8s.lab/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec: [1, 2]\n")
        #expect(has(spec, path: "spec", containing: "expected a mapping, found a list"))
        let addon = load(basePlanYAML + "\n  addons:\n    monitoring:\n      enabled: yes please\n      values: 3\n")
        #expect(has(addon, path: "spec.addons.monitoring.enabled", containing: "expected true or false"))
        #expect(has(addon, path: "spec.addons.monitoring.values", containing: "expected a mapping of Helm values"))
    }

    @Test func missingRequiredFieldsAreReported() {
        let r = load("""
            kind: Cluster
            metadata: {}
            spec:
              kubernetes: {}
              hosts:
                - address: 10.0.0.1
                  role: control-plane
                - name: w
                  role: worker
            """)
        #expect(has(r, path: "apiVersion", containing: "missing required field \"apiVersion\""))
        #expect(has(r, path: "metadata.name", containing: "missing required field \"name\""))
        #expect(has(r, path: "spec.kubernetes.version", containing: "missing required field"))
        #expect(has(r, path: "spec.hosts[0].name", containing: "missing required field"))
        #expect(has(r, path: "spec.hosts[1].address", containing: "missing required field"))
        let nospec = load("apiVersion: bootstrap.k8s.lab/v1alpha1\nkind: Cluster\nmetadata: {name: x}\n")
        #expect(has(nospec, path: "spec", containing: "missing required field \"spec\""))
        let nohosts = load(edited("network:", "hostz: []\n  network:").replacingOccurrences(of: "  hosts:", with: "  oldhosts:"))
        #expect(has(nohosts, path: "spec.hosts", containing: "missing required field \"hosts\""))
    }

    @Test func wrongApiVersionAndKind() {
        let r = load(edited(edited("kind: Cluster", "kind: Clutser"), "v1alpha1", "v9"))
        #expect(has(r, path: "apiVersion", containing: "unknown apiVersion"))
        #expect(has(r, path: "kind", containing: "unknown kind \"Clutser\""))
    }

    @Test(arguments: ["", "   \n", "# only a comment\n", "~\n"])
    func emptyDocumentIsAnError(text: String) {
        let r = load(text)
        #expect(r.plan == nil)
        #expect(r.diagnostics.count == 1)
        #expect(r.diagnostics.first?.message.contains("empty") == true)
    }

    @Test(arguments: ["- a\n- b\n", "just a string\n", "42\n"])
    func nonMappingDocumentIsAnError(text: String) {
        let r = load(text)
        #expect(r.plan == nil)
        #expect(r.diagnostics.count == 1)
        #expect(r.diagnostics.first?.message.contains("expected a mapping") == true)
    }

    @Test func yamlSyntaxErrorsHaveAPosition() {
        let r = load("apiVersion: x\nspec: [a, b\nkind: y\n")
        #expect(r.plan == nil)
        #expect(r.diagnostics.count == 1)
        #expect(r.diagnostics.first?.message.hasPrefix("not valid YAML or JSON") == true)
        #expect(r.diagnostics.first?.line != nil)
        let two = load(basePlanYAML + "\n---\n" + basePlanYAML)
        #expect(two.plan == nil)
        #expect(two.diagnostics.first?.message.contains("one plan per file") == true)
    }

    @Test func duplicateKeysAreReported() {
        let r = load(edited("cni: flannel", "cni: flannel\n    cni: calico"))
        #expect(has(r, path: "spec.network.cni", containing: "given twice"))
    }

    @Test func controlPlaneEndpointGetsTheDefaultPort() throws {
        let p = try plan(edited("version: \"1.34.1\"", "version: \"1.34.1\"\n    controlPlaneEndpoint: api.example.com"))
        #expect(p.spec.kubernetes.controlPlaneEndpoint == "api.example.com:6443")
        #expect(p.apiEndpoint == "api.example.com:6443")
    }

    @Test func bastionInheritsUserAndKey() throws {
        let p = try plan(edited("cni: flannel", "cni: flannel\n  ssh:\n    user: admin\n    keyPath: /k\n    bastion:\n      address: jump.example.com"))
        #expect(p.spec.ssh.bastion == ClusterPlan.Bastion(address: "jump.example.com", port: 22, user: "admin", keyPath: "/k"))
    }

    @Test func addonValuesBecomeJSON() throws {
        let p = try plan(basePlanYAML + """

              addons:
                monitoring:
                  enabled: true
                  version: 77.0.0
                  values:
                    grafana: {adminUser: admin, replicas: 2, persistence: {enabled: false}}
                    ratio: 0.5
                    list: [a, 1]
            """)
        let m = p.spec.addons.monitoring
        #expect(m.enabled)
        #expect(m.version == "77.0.0")
        #expect(m.values["grafana"]?["adminUser"] == .string("admin"))
        #expect(m.values["grafana"]?["replicas"] == .int(2))
        #expect(m.values["grafana"]?["persistence"]?["enabled"] == .bool(false))
        #expect(m.values["ratio"] == .double(0.5))
        #expect(m.values["list"] == .array([.string("a"), .int(1)]))
    }

    @Test func calicoSettingsOnAFlannelPlanWarn() throws {
        let r = load(edited("cni: flannel", "cni: flannel\n    calico:\n      encapsulation: IPIP"))
        #expect(r.plan != nil)
        #expect(has(r, .warning, path: "spec.network.calico", containing: "ignored"))
    }

    @Test func showDefaultsYAMLLoadsBackToTheSamePlan() throws {
        for name in ["lab.yaml", "ec2-basic.yaml", "ec2-ha.yaml"] {
            let url = repoRoot.appendingPathComponent("Plans/\(name)")
            let text = try String(contentsOf: url, encoding: .utf8)
            let base = url.deletingLastPathComponent().path
            let exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }
            let first = try #require(PlanLoader.load(text: text, path: name, baseDirectory: base, fileExists: exists).plan)
            let yaml = PlanYAML.text(first)
            let again = PlanLoader.load(text: yaml, path: name, baseDirectory: base, fileExists: exists)
            #expect(again.diagnostics.isEmpty, "\(again.diagnostics)")
            #expect(again.plan == first.withExplicitSSHOverrides())
        }
    }
}

extension ClusterPlan {
    /// The plan with each host's effective SSH settings written out, as --show-defaults prints them.
    func withExplicitSSHOverrides() -> ClusterPlan {
        var p = self
        p.spec.hosts = spec.hosts.map { h in
            var h = h
            let s = ssh(for: h)
            h.port = s.port
            h.user = s.user
            h.keyPath = s.keyPath
            return h
        }
        // Every spec.ssh field is written out, so each counts as the plan's own (beating ~/.ssh/config).
        p.spec.ssh.explicit = ["user", "keyPath", "knownHosts", "port", "hostKeyPolicy"]
        if spec.ssh.bastion != nil { p.spec.ssh.explicit.insert("bastion") }
        return p
    }
}

@Suite struct ResolvedYAMLTests {
    @Test func stringsThatLookLikeOtherTypesStayStrings() throws {
        let p = try plan(basePlanYAML + """

              addons:
                monitoring:
                  enabled: true
                  values: {a: "true", b: "1.5", c: "null", d: "", e: 3, f: false, g: "yes"}
            """)
        let yaml = PlanYAML.text(p)
        let again = try plan(yaml)
        #expect(again.spec.addons.monitoring.values == p.spec.addons.monitoring.values, "\(yaml)")
        #expect(p.spec.addons.monitoring.values["a"] == .string("true"))
        #expect(p.spec.addons.monitoring.values["e"] == .int(3))
    }
}
