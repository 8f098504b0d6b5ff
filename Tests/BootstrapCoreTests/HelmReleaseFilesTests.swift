import Foundation
import Testing
@testable import BootstrapCore

/// Releases install at the same time on one host: no two share a lock, a values file or Helm's repository
/// files, while the same release always gets the same ones (a re-run waits for a killed run's).
@Suite struct HelmReleaseFilesTests {
    static func plan() -> ClusterPlan {
        ClusterPlan(metadata: .init(name: "lab"), spec: .init(
            kubernetes: .init(version: "1.34.1"),
            hosts: [.init(name: "cp-1", address: "10.0.0.1", role: .controlPlane)],
            addons: .init(metricsServer: .init(enabled: true), monitoring: .init(enabled: true),
                          logging: .init(enabled: true), tracing: .init(enabled: true), dashboard: .init(enabled: true))))
    }

    @Test func eachReleaseHasItsOwnLockValuesAndRepositoryFiles() {
        let releases = Releases.desired(for: Self.plan())
        #expect(releases.count == 8)
        let scripts = releases.map { HelmRecipes.upgrade($0).script }
        let locks = releases.map { HelmRecipes.releaseGuard(namespace: $0.namespace, release: $0.name, "", .init()).lockPath }
        let repos = releases.map { HelmRecipes.repositoryDirectory(namespace: $0.namespace, release: $0.name) }
        #expect(Set(locks).count == releases.count && Set(repos).count == releases.count)
        #expect(Set(releases.map(HelmRecipes.valuesPath)).count == releases.count)
        for (i, r) in releases.enumerated() {
            let script = scripts[i]
            #expect(script.contains("exec 9>>\(locks[i])"), "\(r.key)")
            // Both helm calls read and write the release's own repository file and cache.
            let env = "HELM_REPOSITORY_CONFIG=\(repos[i])/repositories.yaml HELM_REPOSITORY_CACHE=\(repos[i])/cache "
            #expect(script.components(separatedBy: env + HelmRecipes.helmBinary).count == 3, "\(r.key): \(script)")
            #expect(scripts.enumerated().allSatisfy { $0.offset == i || !$0.element.contains(locks[i]) })
        }
        #expect(locks.contains("/var/lib/bootstrap/helm-monitoring_kube-prometheus-stack.lock"))
        // The same release in another namespace is another lock; odd characters become `-`.
        #expect(HelmRecipes.releaseGuard(namespace: "a", release: "b-c", "", .init()).lock
                != HelmRecipes.releaseGuard(namespace: "a-b", release: "c", "", .init()).lock)
        #expect(HelmRecipes.releaseGuard(namespace: "ns", release: "My/Rel", "", .init()).lock == "helm-ns_my-rel")
    }

    @Test func uninstallRemovesTheReleasesRepositoryFiles() {
        let r = Releases.desired(for: Self.plan()).first { $0.name == "jaeger" }!
        let script = HelmRecipes.uninstall(AddonRecord(r)).script
        #expect(script.contains("rm -rf \(HelmRecipes.repositoryDirectory(namespace: r.namespace, release: r.name))"))
        #expect(script.contains("helm-tracing_jaeger.lock"))
    }
}
