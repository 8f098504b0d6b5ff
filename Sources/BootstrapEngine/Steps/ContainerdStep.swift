import BootstrapCore

/// containerd from the OS repository, configured with the systemd cgroup driver, enabled and running. On a
/// node of the cluster (a changed version), the node is drained first, its kubelet restarted after, then it
/// is uncordoned and Ready again (`Upgrade.containerdRoll` orders the nodes).
struct ContainerdStep: HostStep {
    let name = StepName.containerd

    func run(_ ctx: StepContext) async throws -> StepResult {
        let limits = ctx.plan.spec.timeouts
        let install = NodeRecipes.containerd(ctx.os, version: ctx.plan.spec.containerRuntime.containerdVersion,
                                             limits: limits)
        let timeout = Duration.seconds(RemoteGuard.sessionLimit(limits.packages))
        let record = await ctx.cluster.runState.state.hosts[ctx.host.name]
        guard let record, Upgrade.isNode(record), record.steps[StepName.containerd.rawValue] != nil else {
            try await ctx.runner.run(install, timeout: timeout)
            return .changed
        }
        let api = try await ctx.cluster.controlPlaneRunner()
        let name = ctx.host.name
        try await NodeMaintenance.drain(name, api: api, plan: ctx.plan)
        do {
            try await ctx.runner.run(install, timeout: timeout)
            try await ctx.runner.run(UpgradeRecipes.restartKubelet)
        } catch {
            let uncordoned = (try? await api.probe(UpgradeRecipes.uncordon(node: name)))?.succeeded == true
            throw UpgradeError(host: name, message: "\(ErrorText.describe(error, about: name)); "
                + (uncordoned ? "\(name) was uncordoned" : "\(name) is left cordoned (uncordon failed too)"))
        }
        try await api.run(UpgradeRecipes.uncordon(node: name))
        try await NodeMaintenance.waitReady(name, version: nil, api: api, plan: ctx.plan, poll: .seconds(1),
                                            cancellation: CancellationFlag())
        return .changed
    }
}
