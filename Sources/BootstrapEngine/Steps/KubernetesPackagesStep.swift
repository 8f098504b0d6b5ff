import BootstrapCore

/// kubelet, kubeadm and kubectl at the plan's exact version, held so upgrades stay deliberate.
struct KubernetesPackagesStep: HostStep {
    let name = StepName.kubernetesPackages

    func run(_ ctx: StepContext) async throws -> StepResult {
        try await ctx.runner.run(NodeRecipes.kubernetesPackages(ctx.family, version: ctx.plan.spec.kubernetes.version))
        return .changed
    }
}
