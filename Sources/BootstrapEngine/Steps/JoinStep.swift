import BootstrapCore

/// `kubeadm join` of a worker or, with `controlPlane`, of a further control plane (the engine runs those one
/// at a time). Uses a token and certificate key that are valid by the cluster's clock, refreshed when the
/// recorded ones expired. Never joins twice: kubelet.conf on the host means it is a node already.
struct JoinStep: HostStep {
    let controlPlane: Bool
    var name: StepName { controlPlane ? .joinControlPlane : .joinWorker }

    func run(_ ctx: StepContext) async throws -> StepResult {
        let r = ctx.runner
        if try await r.probe(NodeRecipes.hasKubeletConfig).succeeded { return .alreadyDone }
        let token = try await ctx.cluster.joinToken()
        let hash = try await ctx.cluster.caCertHash()
        var key: Secret?
        if controlPlane {
            await ctx.cluster.forgetCertificateKey()
            key = try await ctx.cluster.certificateKey()
        }
        let config = try KubeadmConfig.joinConfig(plan: ctx.plan, host: ctx.host, token: token, caCertHash: hash,
                                                  certificateKey: key)
        try await r.run(ShellCommand(["mkdir", "-p", "-m", "700", NodeRecipes.bootstrapDirectory]))
        try await r.upload(config, to: NodeRecipes.joinConfigPath)
        do {
            try await r.run(NodeRecipes.kubeadmJoin, timeout: .seconds(900))
        } catch {
            // A half-done join leaves files that make the next join refuse; clean them.
            _ = try? await r.probe(ShellCommand(["kubeadm", "reset", "-f"]))
            throw error
        }
        return .changed
    }
}
