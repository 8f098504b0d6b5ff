import BootstrapCore
import Foundation

/// Helm releases (the CNI and the add-ons) and the applied objects (manifests, security defaults).
extension ApplyEngine {
    static let readyJob = "cluster/ready"

    /// Jobs for the releases whose recorded hash differs from the plan's, and for recorded releases the plan
    /// dropped. The CNI comes before the wait for Ready nodes; the add-ons after it, in parallel.
    func releaseJobs(state: ClusterState, cluster: ClusterSession, initJob: String?, helmJob: String?)
        -> (cni: [Job], addons: [Job])
    {
        let desired = Releases.desired(for: plan)
        let base = [initJob, helmJob].compactMap { $0 }
        var cni: [Job] = []
        var addons: [Job] = []
        for r in desired where state.addons[r.key]?.valuesHash != r.valuesHash {
            let deps = r.addon == "cni" ? base : base + [Self.readyJob]
            let job = Job(id: "release/\(r.key)", dependencies: deps) { [self] in
                try await self.install(r, cluster: cluster)
            }
            if r.addon == "cni" { cni.append(job) } else { addons.append(job) }
        }
        let wanted = Set(desired.map(\.key))
        for (key, rec) in state.addons.sorted(by: { $0.key < $1.key }) where !wanted.contains(key) {
            addons.append(Job(id: "uninstall/\(key)", dependencies: base + [Self.readyJob]) { [self] in
                try await self.uninstall(key, rec, cluster: cluster)
            })
        }
        return (cni, addons)
    }

    /// The job applying the plan's objects and pruning recorded ones it no longer has, when anything differs.
    func objectsJob(state: ClusterState, cluster: ClusterSession, after: [String]) -> Job? {
        let objects = self.objects
        let keys = Set(objects.map(\.key))
        let prune = state.manifests.filter { !keys.contains($0.key) }.sorted { $0.key < $1.key }
            .map { (key: $0.key, record: $0.value) }
        let changed = objects.contains { state.manifests[$0.key]?.hash != $0.hash }
        guard changed || !prune.isEmpty else { return nil }
        return Job(id: "cluster/manifests", dependencies: after + [Self.readyJob]) { [self] in
            try await self.applyObjects(objects, prune: prune, cluster: cluster)
        }
    }

    /// Runs `body` on the first control plane as the step `step`, with start/finish events.
    func onControlPlane(_ step: String, cluster: ClusterSession, _ body: (HostRunner) async throws -> Void)
        async throws
    {
        let clock = ContinuousClock()
        let t0 = clock.now
        let cp = try await cluster.controlPlaneRunner()
        events(.stepStarted(host: cp.name, step: step))
        do {
            try await body(cp)
            events(.stepFinished(host: cp.name, step: step, elapsed: clock.now - t0, ran: true))
        } catch {
            events(.stepFailed(host: cp.name, step: step, elapsed: clock.now - t0,
                               error: redact(ErrorText.describe(error, about: cp.name), redactor.secrets)))
            throw error
        }
    }

    func install(_ r: HelmRelease, cluster: ClusterSession) async throws {
        try await onControlPlane("release \(r.key)", cluster: cluster) { cp in
            var secrets: [String: Secret] = [:]
            for name in r.secrets {
                secrets[name] = try await cluster.storedSecret(name) { SecretGenerator.password() }
            }
            try await cp.upload(HelmRecipes.valuesFile(r, secrets: secrets), to: HelmRecipes.valuesPath(r), mode: 0o600)
            let limits = plan.spec.timeouts
            try await withProgress(host: cp.name, step: "release \(r.key)",
                                   message: "waiting for release \(r.namespace)/\(r.name) (helm --wait: its pods Ready)",
                                   awaiting: ["\(r.namespace)/\(r.name)"]) {
                try await cp.run(HelmRecipes.upgrade(r, limits: limits), timeout: .seconds(RemoteGuard.sessionLimit(limits.helm)))
            }
            try await runState.update { $0.addons[r.key] = AddonRecord(r) }
        }
    }

    func uninstall(_ key: String, _ rec: AddonRecord, cluster: ClusterSession) async throws {
        try await onControlPlane("uninstall \(key)", cluster: cluster) { cp in
            let limits = plan.spec.timeouts
            try await cp.run(HelmRecipes.uninstall(rec, limits: limits), timeout: .seconds(RemoteGuard.sessionLimit(limits.helm)))
            try await runState.update { $0.addons[key] = nil }
        }
    }

    func applyObjects(_ objects: [KubeObject], prune: [(key: String, record: ManifestRecord)],
                      cluster: ClusterSession) async throws
    {
        try await onControlPlane("manifests", cluster: cluster) { cp in
            if !objects.isEmpty {
                try await cp.upload(Manifests.document(Manifests.applyOrder(objects)), to: HelmRecipes.objectsFile,
                                    mode: 0o600)
                try await cp.run(HelmRecipes.applyObjects, timeout: .seconds(RemoteGuard.sessionLimit(300)))
            }
            if !prune.isEmpty {
                try await cp.upload(HelmRecipes.pruneDocument(prune), to: HelmRecipes.pruneFile, mode: 0o600)
                try await cp.run(HelmRecipes.pruneObjects, timeout: .seconds(RemoteGuard.sessionLimit(300)))
            }
            let records = Dictionary(objects.map { ($0.key, ManifestRecord($0)) }, uniquingKeysWith: { a, _ in a })
            try await runState.update { $0.manifests = records }
        }
    }
}
