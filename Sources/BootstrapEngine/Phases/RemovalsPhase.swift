import BootstrapCore
import Foundation

/// The removals phase: hosts gone from the plan, or replaced, leave the cluster.
extension ApplyEngine {
    /// The kubeadm procedure for removing a node: a control plane's etcd member removed, drain it (through the
    /// control plane serving the cluster, one that stays), reset the host,
    /// then delete the Node (deleted before the reset, its still-running kubelet would register it again), and
    /// forget it; a replaced host's record starts again as `replacement` (the new machine), so that the steps
    /// the plan runs on it next are recorded. When the host is the one the cluster is anchored on
    /// (`cluster.initializedOn`: it ran `kubeadm init`), the serving control plane takes its place there, and
    /// the Helm step is forgotten (Helm was installed on the host that leaves; it goes to the new anchor).
    func removeHost(_ name: String, runner: HostRunner?, replacement: HostRecord?, cluster: ClusterSession)
        async throws
    {
        try await stepEvents.run(host: name, step: "remove") {
            let cp = try? await cluster.controlPlaneRunner()
            let api = cp.flatMap { $0.name != name ? $0 : nil }
            // A control plane leaves etcd first (from a control plane that stays), so that quorum is counted
            // right from then on, even when the host is gone and cannot reset itself.
            if let api, let rec = await runState.state.hosts[name], rec.role == .controlPlane {
                let version = try await api.run(EtcdRecipes.version).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                try await api.run(EtcdRecipes.install(version: version), timeout: .seconds(RemoteGuard.sessionLimit(300)))
                try await api.run(EtcdRecipes.memberRemove(peerURL: EtcdRecipes.peerURL(address: rec.privateAddress ?? rec.address)))
            }
            if let api {
                _ = try await api.probe(NodeRecipes.drain(node: name), timeout: .seconds(180))
            }
            guard let runner else { throw EngineError.unreachable(host: name, reason: "not connected; kept in the state") }
            let os = await runState.state.hosts[name]?.facts.flatMap { NodeOSes.for($0) }
            let limits = plan.spec.timeouts
            try await runner.run(NodeRecipes.reset(os, purge: false, limits: limits),
                                 timeout: .seconds(RemoteGuard.sessionLimit(limits.join)))
            if let api { try await api.run(NodeRecipes.deleteNode(name)) }
            let successor = api?.name
            try await runState.update {
                $0.hosts[name] = replacement
                if $0.cluster.initializedOn == name, let successor {
                    $0.cluster.initializedOn = successor
                    $0.cluster.steps[ClusterStepName.helm.rawValue] = nil
                }
            }
            return true
        }
    }
}
