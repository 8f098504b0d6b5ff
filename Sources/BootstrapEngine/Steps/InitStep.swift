import Foundation
import BootstrapCore

/// `kubeadm init` on the first control plane, from a generated config file that carries a bootstrap token
/// and certificate key made (and recorded) beforehand. Never runs twice: if admin.conf is there, init has
/// happened (perhaps in a run that was killed before recording it) and only the record is completed. The
/// init command checks that itself, under the kubeadm lock (`NodeRecipes.once`): no round trip before it.
struct InitStep: HostStep {
    let name = StepName.initControlPlane

    func run(_ ctx: StepContext) async throws -> StepResult {
        let r = ctx.runner
        let (token, key) = try await ctx.cluster.secretsForInit()
        let config = try KubeadmConfig.initConfig(plan: ctx.plan, host: ctx.host, token: token, certificateKey: key)
        let limits = ctx.plan.spec.timeouts
        let result: CommandResult
        do {
            result = try await r.run(NodeRecipes.kubeadmInit(limits: limits), stdin: Data(config.utf8),
                                     timeout: .seconds(RemoteGuard.sessionLimit(limits.`init`)))
        } catch {
            // A failed init can leave half a control plane behind; clean it so the next run starts afresh.
            await KubeadmCleanup.afterFailure(error, of: "kubeadm init", ctx: ctx)
            throw error
        }
        try await ctx.cluster.recordInit(on: ctx.host.name)
        return result.stdoutText.hasPrefix(NodeRecipes.alreadyDone) ? .alreadyDone : .changed
    }
}

/// The `kubeadm reset` after a failed init or join, only when the failure was that command's own: it exited
/// non-zero, ran out of its time, or was stopped by Ctrl-C. Not when it never started because the host's
/// kubeadm lock is held (another run's init or join may be under way), nor when the connection failed (the
/// command may still be running, or have succeeded).
enum KubeadmCleanup {
    static func afterFailure(_ error: Error, of what: String, ctx: StepContext) async {
        switch error as? EngineError {
        case .commandFailed?, .timeout?, .cancelled?:
            break
        default:
            return
        }
        let runner = ctx.runner
        let limits = ctx.plan.spec.timeouts
        // Not a child of the (possibly cancelled) step: the reset must run even after Ctrl-C. It takes the same
        // kubeadm lock, so it waits for the stopped command to be gone.
        let reset = Task {
            _ = try? await runner.probe(NodeRecipes.reset(ctx.os, purge: false, limits: limits),
                                        timeout: .seconds(RemoteGuard.sessionLimit(limits.join)))
        }
        await reset.value
    }
}
