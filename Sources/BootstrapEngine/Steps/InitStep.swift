import Foundation
import BootstrapCore

/// `kubeadm init` on the first control plane, from a generated config file that carries a bootstrap token
/// and certificate key made (and recorded) beforehand. Never runs twice: if admin.conf is there, init has
/// happened (perhaps in a run that was killed before recording it) and only the record is completed.
struct InitStep: HostStep {
    let name = StepName.initControlPlane

    func run(_ ctx: StepContext) async throws -> StepResult {
        let r = ctx.runner
        if try await r.probe(NodeRecipes.hasAdminConfig).succeeded {
            try await ctx.cluster.recordInit(on: ctx.host.name)
            return .alreadyDone
        }
        let (token, key) = try await ctx.cluster.secretsForInit()
        let config = try KubeadmConfig.initConfig(plan: ctx.plan, host: ctx.host, token: token, certificateKey: key)
        do {
            try await r.run(NodeRecipes.kubeadmInit, stdin: Data(config.utf8), timeout: .seconds(900))
        } catch {
            // A failed init can leave half a control plane behind; clean it so the next run starts afresh.
            _ = try? await r.probe(ShellCommand(["kubeadm", "reset", "-f"]))
            throw error
        }
        try await ctx.cluster.recordInit(on: ctx.host.name)
        return .changed
    }
}
