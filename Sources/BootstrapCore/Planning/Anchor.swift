/// Which control plane does what, given the plan and what the state records: who runs `kubeadm init` (once),
/// and which control plane anchors the cluster-wide work (kubectl, Helm, the kubeconfig, the first
/// `kubeadm upgrade apply`). The one place these are decided; the plan's order alone decides them only for a
/// cluster not made yet.
extension ClusterPlan {
    /// The control plane whose steps include `kubeadm init`: for a cluster not made yet, the first control
    /// plane listed; once it exists (`state.cluster.initializedOn`), the host recorded there while the plan keeps
    /// that machine (listed as a control plane, neither removed nor replaced) and it did not join (a host of
    /// that name that joined is another machine); otherwise none. Every other control plane joins, a new one
    /// listed first included.
    public func initControlPlane(state: ClusterState?) -> Host? {
        guard let state, let recorded = state.cluster.initializedOn else { return firstControlPlane }
        guard let host = controlPlanes.first(where: { $0.name == recorded }),
              state.hosts[recorded]?.steps[StepName.joinControlPlane.rawValue] == nil,
              !Planner.removals(plan: self, state: state).contains(recorded)
        else { return nil }
        return host
    }

    /// The control plane cluster-wide work goes through first (kubectl, Helm and its releases, the admin
    /// kubeconfig, the first `kubeadm upgrade apply`, the cluster's clock): for a cluster not made yet, the first
    /// control plane listed; then the one `state.cluster.initializedOn` names (it ran `kubeadm init`, or took
    /// over when that host left) while the plan keeps it; else the first control plane listed whose node the
    /// cluster has and keeps (recorded as joined, neither removed nor replaced); else the first listed.
    public func anchorControlPlane(state: ClusterState?) -> Host? {
        guard let state, let recorded = state.cluster.initializedOn else { return firstControlPlane }
        let removed = Set(Planner.removals(plan: self, state: state))
        let kept = controlPlanes.filter { !removed.contains($0.name) && state.hosts[$0.name] != nil }
        return kept.first { $0.name == recorded }
            ?? kept.first { state.hosts[$0.name].map(Upgrade.isNode) == true }
            ?? firstControlPlane
    }
}
