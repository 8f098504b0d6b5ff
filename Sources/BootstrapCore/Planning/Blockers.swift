import Foundation

/// Every change apply refuses to make to a live cluster, with its reason: the one place that decides it.
/// `plan` shows these and exits 1; `apply` refuses with the same words before touching a host.
public enum Blockers {
    public static func find(plan: ClusterPlan, state: ClusterState?) -> [Blocker] {
        guard let state, state.cluster.initializedOn != nil else {
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
        out += controlPlanes(plan: plan, state: state)
        out += Certificates.blockers(plan: plan, state: state)
        out += elasticsearchStorage(plan: plan, state: state)
        return out
    }

    /// Elasticsearch's data volume is its StatefulSet's volume claim template, which the API server refuses to
    /// change (`helm upgrade` would fail): a changed one is refused here with the way to get there.
    static func elasticsearchStorage(plan: ClusterPlan, state: ClusterState) -> [Blocker] {
        guard let recorded = state.addons["logging/elasticsearch"],
              let desired = Releases.desired(for: plan).first(where: { $0.key == "logging/elasticsearch" }),
              Releases.elasticsearchClaim(recorded.values) != Releases.elasticsearchClaim(desired.values)
        else { return [] }
        return [Blocker(path: "spec.addons.logging.storageClass",
                        reason: "Elasticsearch's data volume (storage class or size) changed, but Kubernetes forbids changing the volumeClaimTemplates of its StatefulSet, so helm upgrade would fail; apply once with spec.addons.logging.enabled: false (uninstalls the logging releases, Elasticsearch's data with them), then enable it again with the new storage")]
    }

    /// Some recorded control plane must survive, no control plane whose address is the cluster's endpoint may
    /// leave (every node reaches the API server there), and etcd must keep quorum. Any other control plane may
    /// be removed or replaced, the one that ran `kubeadm init` included: the catalogue gives `init` to that
    /// host only while it stays (`ClusterPlan.initControlPlane(state:)`), and the others join.
    static func controlPlanes(plan: ClusterPlan, state: ClusterState) -> [Blocker] {
        let removed = Set(Planner.removals(plan: plan, state: state))
        let recordedCPs = state.hosts.filter { $0.value.role == .controlPlane }.map(\.key)
        if !recordedCPs.isEmpty, recordedCPs.allSatisfy({ removed.contains($0) }) {
            return [Blocker(path: "spec.hosts",
                            reason: "every control plane of the live cluster (\(recordedCPs.sorted().joined(separator: ", "))) would be removed or replaced; use `bootstrap destroy` to tear the cluster down")]
        }
        var out: [Blocker] = []
        // The endpoint kubelets, kubeadm-config and kubeconfigs were given when the cluster was made.
        if let endpoint = state.cluster.endpoint ?? plan.spec.kubernetes.controlPlaneEndpoint {
            let host = KubeadmConfig.hostPart(endpoint)
            for name in recordedCPs.sorted() where removed.contains(name) {
                guard let rec = state.hosts[name], rec.address == host || rec.privateAddress == host else { continue }
                out.append(Blocker(path: "spec.hosts",
                                   reason: "\(name) would be removed or replaced, but the cluster's endpoint \(endpoint) is its own address: every kubelet and kubeconfig reaches the API server there and would lose it. A control plane can leave only when spec.kubernetes.controlPlaneEndpoint, set when the cluster is created, does not depend on one host (a DNS name or a load balancer in front of every control plane); recreate the cluster with one to be able to replace \(name)"))
            }
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
