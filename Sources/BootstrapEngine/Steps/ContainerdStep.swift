import BootstrapCore

/// containerd from the OS repository, configured with the systemd cgroup driver, enabled and running.
struct ContainerdStep: HostStep {
    let name = StepName.containerd

    func run(_ ctx: StepContext) async throws -> StepResult {
        let limits = ctx.plan.spec.timeouts
        try await ctx.runner.run(NodeRecipes.containerd(ctx.os, version: ctx.plan.spec.containerRuntime.containerdVersion,
                                                        limits: limits),
                                 timeout: .seconds(RemoteGuard.sessionLimit(limits.packages)))
        return .changed
    }
}
