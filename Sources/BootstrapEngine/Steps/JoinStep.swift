import Foundation
import BootstrapCore

/// `kubeadm join` of a worker or, with `controlPlane`, of a further control plane (the engine runs those one
/// at a time). Uses a token and certificate key that are valid by the cluster's clock, refreshed when the
/// recorded ones expired. Never joins twice: kubelet.conf on the host means it is a node already.
struct JoinStep: HostStep {
    let controlPlane: Bool
    var name: StepName { controlPlane ? .joinControlPlane : .joinWorker }

    func run(_ ctx: StepContext) async throws -> StepResult {
        let r = ctx.runner
        // A control plane checks first, so that a host already joined never costs a new certificate key. A
        // worker needs no separate round trip: the join command checks kubelet.conf under its lock and says so
        // (a token fetched for a worker that turns out joined is harmless: tokens expire).
        if controlPlane, try await r.probe(NodeRecipes.hasKubeletConfig).succeeded { return .alreadyDone }
        let token = try await ctx.cluster.joinToken()
        let hash = try await ctx.cluster.caCertHash()
        var key: Secret?
        if controlPlane {
            await ctx.cluster.forgetCertificateKey()
            key = try await ctx.cluster.certificateKey()
        }
        let config = try KubeadmConfig.joinConfig(plan: ctx.plan, host: ctx.host, token: token, caCertHash: hash,
                                                  certificateKey: key)
        let result: CommandResult
        let limits = ctx.plan.spec.timeouts
        do {
            result = try await r.run(NodeRecipes.kubeadmJoin(limits: limits), stdin: Data(config.utf8),
                                     timeout: .seconds(RemoteGuard.sessionLimit(limits.join)))
        } catch {
            // A half-done join leaves files that make the next join refuse; clean them (only after a failure
            // of this join itself: see KubeadmCleanup).
            await KubeadmCleanup.afterFailure(error, of: "kubeadm join", ctx: ctx)
            throw error
        }
        if result.stdoutText.hasPrefix(NodeRecipes.alreadyDone) { return .alreadyDone }
        return .changed
    }
}
