import Testing
@testable import BootstrapCore

@Suite struct KubernetesReleasesTests {
    @Test func perMinorFacts() {
        for m in KubernetesReleases.minors {
            #expect(KubernetesReleases.info(m)?.kubeadmConfigAPIVersion == "kubeadm.k8s.io/v1beta4")
        }
        #expect(KubernetesReleases.kubeadmConfigAPIVersion("1.30") == "kubeadm.k8s.io/v1beta3")
        #expect(KubernetesReleases.info("1.33")?.upgradeSourceOnly == true)
        #expect(KubernetesReleases.info("1.36")?.latestPatch == 1)
        #expect(KubernetesReleases.info("1.32") == nil)
    }

    @Test func upgradeStepsFollowKubeadm() {
        #expect(KubernetesReleases.upgradeStep(from: "1.35.2", to: "1.35.5") == .patch)
        #expect(KubernetesReleases.upgradeStep(from: "1.35.5", to: "v1.36.1") == .minor)
        #expect(KubernetesReleases.upgradeStep(from: "1.34.7", to: "1.36.1") == .skipsMinor(through: "1.35.5"))
        #expect(KubernetesReleases.upgradeStep(from: "1.36.1", to: "1.35.5") == .downgrade)
        #expect(KubernetesReleases.upgradeStep(from: "1.36.1", to: "1.36.0") == .downgrade)
        #expect(KubernetesReleases.upgradeStep(from: "1.36.1", to: "1.36.1") == .unchanged)
        #expect(KubernetesReleases.upgradeStep(from: "1.36", to: "1.36.1") == nil)
    }

    @Test func kubeletSkew() {
        #expect(KubernetesReleases.kubeletSkewAllowed(kubelet: "1.33.5", apiServer: "1.36.1"))
        #expect(!KubernetesReleases.kubeletSkewAllowed(kubelet: "1.32.9", apiServer: "1.36.1"))
        #expect(!KubernetesReleases.kubeletSkewAllowed(kubelet: "1.36.1", apiServer: "1.35.5"))
        #expect(!KubernetesReleases.kubeletSkewAllowed(kubelet: "1.35.5", apiServer: "1.35.4"))
        #expect(KubernetesReleases.kubeletSkewAllowed(kubelet: "1.35.4", apiServer: "1.35.5"))
    }
}
