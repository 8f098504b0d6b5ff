import BootstrapCore
import Foundation

/// The objects phase: the plan's Kubernetes objects (manifests, security defaults) applied server-side, and
/// recorded ones the plan dropped pruned.
extension ApplyEngine {
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
