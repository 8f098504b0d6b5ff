import BootstrapCore

/// kubelet, kubeadm and kubectl at the plan's exact version, held so upgrades stay deliberate, and containerd
/// when the host has none: one index refresh, one transaction, and on a node of the cluster the kubelet
/// restarted, all in one script (one round trip).
struct KubernetesPackagesStep: HostStep {
    let name = StepName.kubernetesPackages

    func run(_ ctx: StepContext) async throws -> StepResult {
        let limits = ctx.plan.spec.timeouts
        try await ctx.runner.run(NodeRecipes.kubernetesPackages(ctx.os, version: ctx.plan.spec.kubernetes.version,
                                                                containerdVersion: ctx.plan.spec.containerRuntime.containerdVersion,
                                                                limits: limits),
                                 timeout: .seconds(RemoteGuard.sessionLimit(limits.packages)))
        return .changed
    }
}
