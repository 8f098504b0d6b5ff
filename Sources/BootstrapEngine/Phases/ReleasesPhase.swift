import BootstrapCore
import Foundation

/// The releases phase: Helm releases (the CNI and the add-ons) installed, upgraded or uninstalled on the
/// first control plane, each on a session of its own (`ClusterSession.leaseReleaseRunner()`), so that the
/// add-ons the step graph starts together after wait-ready really install at the same time.
extension ApplyEngine {
    /// Runs `body` on the first control plane as the step `step`, with start/finish events.
    func onControlPlane(_ step: String, cluster: ClusterSession, _ body: (HostRunner) async throws -> Void)
        async throws
    {
        let cp = try await cluster.controlPlaneRunner()
        try await stepEvents.run(host: cp.name, step: step) {
            try await body(cp)
            return true
        }
    }

    /// Runs `body` as the step `step` of a Helm release: told on the serving control plane, run on a session of
    /// its own to it, whose commands and output are labelled with the step in the host's log (releases run at
    /// the same time there).
    func onReleaseSession(_ step: String, cluster: ClusterSession, _ body: (HostRunner) async throws -> Void)
        async throws
    {
        let cp = try await cluster.controlPlaneRunner()
        try await stepEvents.run(host: cp.name, step: step) {
            let leased = try await cluster.leaseReleaseRunner()
            do {
                try await body(leased.labelled(step))
            } catch {
                // A command that ran and failed leaves its session usable; any other error may have lost it.
                let usable: Bool = switch error {
                case EngineError.commandFailed, EngineError.lockBusy: true
                default: false
                }
                await cluster.returnReleaseRunner(leased, usable: usable)
                throw error
            }
            await cluster.returnReleaseRunner(leased, usable: true)
            return true
        }
    }

    /// Installs or upgrades `r` (`helm upgrade --install --wait` under its own lock), recorded in the state once
    /// it is done, with a progress line while Helm waits.
    func install(_ r: HelmRelease, cluster: ClusterSession) async throws {
        try await onReleaseSession("release \(r.key)", cluster: cluster) { cp in
            var secrets: [String: Secret] = [:]
            for name in r.secrets {
                secrets[name] = try await cluster.storedSecret(name) { SecretGenerator.password() }
            }
            try await cp.upload(HelmRecipes.valuesFile(r, secrets: secrets), to: HelmRecipes.valuesPath(r), mode: 0o600)
            let limits = plan.spec.timeouts
            try await withProgress(host: cp.name, step: "release \(r.key)",
                                   status: { await Self.releaseProgress(r, cluster: cluster) }) {
                try await cp.run(HelmRecipes.upgrade(r, limits: limits), timeout: .seconds(RemoteGuard.sessionLimit(limits.helm)))
            }
            try await runState.update { $0.addons[r.key] = AddonRecord(r) }
        }
    }

    /// How far `helm --wait` has got with `r`: its pods Ready of those its workloads want, counted on the
    /// run's one watching session to the first control plane (shared by the releases, labelled with the one it
    /// looks for). Without a count when that cannot be read.
    static func releaseProgress(_ r: HelmRelease, cluster: ClusterSession) async -> Progress {
        var pods: ReleasePods.Count?
        if let watcher = try? await cluster.watcher().labelled("progress of release \(r.key)"),
           let result = try? await watcher.probe(HelmRecipes.releaseWorkloads, timeout: .seconds(30)), result.succeeded {
            pods = ReleasePods.count(result.stdoutText, release: r.name, namespace: r.namespace)
        }
        return (ReleasePods.message(namespace: r.namespace, release: r.name, pods), ["\(r.namespace)/\(r.name)"], pods)
    }

    func uninstall(_ key: String, _ rec: AddonRecord, cluster: ClusterSession) async throws {
        try await onReleaseSession("uninstall \(key)", cluster: cluster) { cp in
            let limits = plan.spec.timeouts
            try await cp.run(HelmRecipes.uninstall(rec, limits: limits), timeout: .seconds(RemoteGuard.sessionLimit(limits.helm)))
            try await runState.update { $0.addons[key] = nil }
        }
    }
}
