import Foundation

/// Every change apply refuses to make to a live cluster, with its reason: the one place that decides it.
/// `plan` shows these and exits 1; `apply` refuses with the same words before touching a host.
public enum Blockers {
    public static func find(plan: ClusterPlan, state: ClusterState?) -> [Blocker] {
        guard let state, let initHost = state.cluster.initializedOn else {
            // A new cluster: only the maintained releases.
            return UpgradeRules.problems(target: plan.spec.kubernetes.version, recorded: nil)
        }
        var out: [Blocker] = []
        let c = state.cluster
        let k = plan.spec.kubernetes, net = plan.spec.network
        if let old = c.cni, old != net.cni.rawValue {
            out.append(Blocker(path: "spec.network.cni",
                               reason: "CNI changed \(old) → \(net.cni.rawValue) on an initialised cluster; a CNI cannot be swapped in place (destroy and re-create the cluster)"))
        }
        if let old = c.podSubnet, old != net.podSubnet {
            out.append(Blocker(path: "spec.network.podSubnet",
                               reason: "pod subnet changed \(old) → \(net.podSubnet) on an initialised cluster; running pods and node ranges cannot move (destroy and re-create the cluster)"))
        }
        if let old = c.serviceSubnet, old != net.serviceSubnet {
            out.append(Blocker(path: "spec.network.serviceSubnet",
                               reason: "service subnet changed \(old) → \(net.serviceSubnet) on an initialised cluster; existing Service IPs and certificates depend on it"))
        }
        if let newEndpoint = k.controlPlaneEndpoint, let old = c.endpoint, old != newEndpoint {
            out.append(Blocker(path: "spec.kubernetes.controlPlaneEndpoint",
                               reason: "control-plane endpoint changed \(old) → \(newEndpoint) on an initialised cluster; certificates and every kubeconfig name the old one"))
        }
        // Version changes follow kubeadm's upgrade rules (Upgrade.swift).
        out += UpgradeRules.problems(target: k.version, recorded: c.kubernetesVersion ?? k.version)
        out += Upgrade.blockers(plan: plan, state: state)
        out += controlPlanes(plan: plan, state: state, initHost: initHost)
        out += Certificates.blockers(plan: plan, state: state)
        return out
    }

    /// Some recorded control plane must survive, the host that ran `kubeadm init` must stay and stay first
    /// among the control planes (the catalogue gives `init` to the first one), and etcd must keep quorum.
    static func controlPlanes(plan: ClusterPlan, state: ClusterState, initHost: String) -> [Blocker] {
        let removed = Set(Planner.removals(plan: plan, state: state))
        let recordedCPs = state.hosts.filter { $0.value.role == .controlPlane }.map(\.key)
        if !recordedCPs.isEmpty, recordedCPs.allSatisfy({ removed.contains($0) }) {
            return [Blocker(path: "spec.hosts",
                            reason: "every control plane of the live cluster (\(recordedCPs.sorted().joined(separator: ", "))) would be removed or replaced; use `bootstrap destroy` to tear the cluster down")]
        }
        var out: [Blocker] = []
        if removed.contains(initHost) {
            out.append(Blocker(path: "spec.hosts",
                               reason: "\(initHost) ran kubeadm init and holds the cluster's first control plane; it cannot be removed or replaced (destroy the cluster instead)"))
        } else if plan.firstControlPlane?.name != initHost {
            let found = plan.firstControlPlane.map { " (found \($0.name) first)" } ?? ""
            out.append(Blocker(path: "spec.hosts",
                               reason: "\(initHost) ran kubeadm init and must stay the first control plane listed\(found); move it back to the top"))
        }
        // Quorum: etcd keeps working only while a majority of its members remain.
        let cps = recordedCPs.count
        let removedCPs = recordedCPs.filter { removed.contains($0) }.count
        if removedCPs > 0 {
            let remaining = cps - removedCPs
            if remaining * 2 <= cps {
                out.append(Blocker(path: "spec.hosts",
                                   reason: "removing \(removedCPs) of \(cps) control planes would leave \(remaining): etcd needs a majority (\(cps / 2 + 1)) to keep quorum; remove one at a time, keeping a majority"))
            }
        }
        return out
    }
}
