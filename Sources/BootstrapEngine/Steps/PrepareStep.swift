import BootstrapCore

/// Swap off now and in fstab, overlay and br_netfilter loaded and persisted, sysctls persisted and applied.
/// Every command is idempotent, so it simply runs again when not recorded.
struct PrepareStep: HostStep {
    let name = StepName.prepare

    func run(_ ctx: StepContext) async throws -> StepResult {
        try await ctx.runner.run(NodeRecipes.prepare)
        return .changed
    }
}
