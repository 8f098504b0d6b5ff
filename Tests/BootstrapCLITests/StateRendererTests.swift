import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCLI
@testable import BootstrapCore

@Suite struct StateRendererTests {
    func state() throws -> ClusterState {
        var s = appliedState(try plan(basePlanYAML))
        s.cluster.secrets["bootstrapToken"] = SecretRecord(value: Secret("abcdef.0123456789abcdef"),
                                                           expiresAt: Date(timeIntervalSince1970: 1_900_000_000))
        s.cluster.caCertHash = "sha256:feed"
        return s
    }

    @Test func summaryHidesSecretsUnlessAsked() throws {
        let s = try state()
        let text = StateRenderer.summary(s, path: "x.json")
        #expect(!text.contains("abcdef.0123456789abcdef"))
        #expect(text.contains("secret bootstrapToken: <redacted>, expires 2030-03-17T17:46:40Z"))
        #expect(text.contains("  cp-1      10.0.1.10:22  control-plane  steps done: prepare, kubernetes-repo, kubernetes-packages, containerd, images, init, node-config\n"))
        #expect(text.contains("initialised on cp-1"))
        #expect(StateRenderer.summary(s, path: "x.json", showSecrets: true).contains("abcdef.0123456789abcdef"))
        let json = PlanRenderer.json(StateRenderer.redacted(s))
        #expect(!json.contains("abcdef.0123456789abcdef"))
        #expect(json.contains("<redacted>"))
    }

    /// The outputs use the address the operator can reach: an instance's public address where it has one.
    @Test func outputsUseThePublicAddressWhereTheHostHasOne() throws {
        var s = try state()
        var ui = try #require(s.addons.values.first)
        ui.nodePorts = ["grafana": 30300, "dashboard": 30443]
        s.addons["monitoring"] = ui
        let own = ClusterOutputs(s, kubeconfig: nil, showSecrets: false)
        #expect(own.apiEndpoint == "10.0.1.10:6443")
        #expect(own.urls == ["grafana": "http://10.0.1.10:30300", "dashboard": "https://10.0.1.10:30443"])

        s.hosts["cp-1"]?.publicAddress = "203.0.113.10"
        let text = StateRenderer.summary(s, path: "x.json")
        #expect(text.contains("api_endpoint  = https://203.0.113.10:6443\n"), "\(text)")
        #expect(text.contains("grafana_url   = http://203.0.113.10:30300\n"), "\(text)")
        #expect(text.contains("dashboard_url = https://203.0.113.10:30443\n"), "\(text)")
        // The host list keeps the address bootstrap uses.
        #expect(text.contains("  cp-1      10.0.1.10:22  control-plane"))

        // A controlPlaneEndpoint is the plan's: printed as it is; the NodePorts still at the public address.
        s.cluster.endpoint = "api.example.com:6443"
        let named = ClusterOutputs(s, kubeconfig: nil, showSecrets: false)
        #expect(named.apiEndpoint == "api.example.com:6443")
        #expect(named.urls["grafana"] == "http://203.0.113.10:30300")
    }
}
