import BootstrapCore

/// The images init or join needs, pulled ahead: on a worker while the first control plane runs `kubeadm init`
/// (this step waits for nothing on other hosts), on a control plane before its init or join, which then find
/// them present; with the CNI's images on every node, which its DaemonSet's pods then find present.
/// Idempotent: pulling a present image fetches nothing.
struct ImagesStep: HostStep {
    let name = StepName.images

    func run(_ ctx: StepContext) async throws -> StepResult {
        let limits = ctx.plan.spec.timeouts
        try await ctx.runner.run(NodeRecipes.pullImages(controlPlane: ctx.host.role == .controlPlane,
                                                        version: ctx.plan.spec.kubernetes.version,
                                                        cniImages: Releases.cniNodeImages(ctx.plan.spec.network)),
                                 timeout: .seconds(RemoteGuard.sessionLimit(limits.packages)))
        return .changed
    }
}
