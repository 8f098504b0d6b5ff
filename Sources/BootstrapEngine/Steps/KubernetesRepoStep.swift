import BootstrapCore

/// The pkgs.k8s.io repository of the plan's minor version, with its signing key.
struct KubernetesRepoStep: HostStep {
    let name = StepName.kubernetesRepo

    func run(_ ctx: StepContext) async throws -> StepResult {
        let limits = ctx.plan.spec.timeouts
        try await ctx.runner.run(NodeRecipes.kubernetesRepo(ctx.os, minor: ctx.plan.kubernetesMinor, limits: limits),
                                 timeout: .seconds(RemoteGuard.sessionLimit(limits.packages)))
        return .changed
    }
}
