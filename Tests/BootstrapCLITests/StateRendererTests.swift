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
}
