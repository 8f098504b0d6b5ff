import BootstrapCore

/// The plan's labels and taints on the node, set through the first control plane. Labels and taints this
/// tool set before and the plan no longer has are removed; others (kubeadm's own) are left alone, except
/// the control-plane taint: removed while the plan has no workers, put back when it has some.
struct NodeConfigStep: HostStep {
    let name = StepName.nodeConfig

    func run(_ ctx: StepContext) async throws -> StepResult {
        let cp = try await ctx.cluster.controlPlaneRunner()
        let previous = await ctx.cluster.runState.state.hosts[ctx.host.name]
        if ctx.host.role == .controlPlane {
            let taint = ClusterPlan.controlPlaneTaint
            if ctx.plan.controlPlanesRunWorkloads {
                do {
                    try await cp.run(NodeRecipes.nodeTaints(node: ctx.host.name, set: [], remove: [taint])!)
                } catch EngineError.commandFailed(_, _, _, _, let stderr) where stderr.contains("not found") {
                    // Already gone.
                }
            } else if previous?.steps[StepName.nodeConfig.rawValue] != nil {
                // node-config ran before, maybe without workers: the taint may be gone; kubeadm's default again.
                try await cp.run(NodeRecipes.nodeTaints(node: ctx.host.name, set: [taint], remove: [])!)
            }
        }
        let removedLabels = (previous?.labels.keys.map { $0 } ?? []).filter { ctx.host.labels[$0] == nil }
        let removedTaints = (previous?.taints ?? []).filter { old in
            !ctx.host.taints.contains { $0.key == old.key && $0.effect == old.effect }
        }
        if let cmd = NodeRecipes.nodeLabels(node: ctx.host.name, set: ctx.host.labels, remove: removedLabels) {
            try await cp.run(cmd)
        }
        if let cmd = NodeRecipes.nodeTaints(node: ctx.host.name, set: ctx.host.taints, remove: removedTaints) {
            try await cp.run(cmd)
        }
        let host = ctx.host
        try await ctx.cluster.runState.update(host: host.name) {
            $0.labels = host.labels
            $0.taints = host.taints
        }
        return .changed
    }
}
