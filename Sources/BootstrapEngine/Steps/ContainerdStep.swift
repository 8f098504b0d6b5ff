import BootstrapCore

/// containerd from the OS repository, configured with the systemd cgroup driver, enabled and running.
struct ContainerdStep: HostStep {
    let name = StepName.containerd

    func run(_ ctx: StepContext) async throws -> StepResult {
        try await ctx.runner.run(NodeRecipes.containerd(ctx.family, version: ctx.plan.spec.containerRuntime.containerdVersion))
        return .changed
    }
}
