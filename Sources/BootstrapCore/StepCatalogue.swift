/// The steps a plan asks of each host, in order, with the hash of the inputs each one depends on.
///
/// This is the *what*: pure and shared by `plan` (which shows the steps a host will run) and the engine
/// (which runs them). A step whose recorded input hash equals the planned one is done; any other step runs.
public enum StepName: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Swap off (now and in fstab), kernel modules loaded and persisted, sysctls persisted.
    case prepare
    /// The Kubernetes package repository for the plan's minor version (its files; the index is read by the
    /// packages step).
    case kubernetesRepo = "kubernetes-repo"
    /// One index refresh and one transaction: kubelet, kubeadm, kubectl at the exact version, held, and
    /// containerd when the host has none.
    case kubernetesPackages = "kubernetes-packages"
    /// containerd at the plan's version (installed here only when it is not), configured with the systemd
    /// cgroup driver, running.
    case containerd
    /// The images `kubeadm init` or `join` and the node's first pods need, pulled beforehand: a worker's while
    /// the first control plane runs init (it does not wait for it), so that init and join do not pull; and
    /// the CNI's (`Releases.cniNodeImages`), so that its pods do not pull them before the node can be Ready.
    case images
    /// `kubeadm init` on the first control plane of a new cluster (`ClusterPlan.initControlPlane(state:)`).
    case initControlPlane = "init"
    /// `kubeadm join --control-plane` on further control planes (one at a time).
    case joinControlPlane = "join-control-plane"
    /// `kubeadm join` on workers (in parallel).
    case joinWorker = "join-worker"
    /// Node labels and taints.
    case nodeConfig = "node-config"

    public static func < (a: StepName, b: StepName) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Steps that must never run twice on a host that already did them (non-idempotent actions).
    public var isOneShot: Bool { self == .initControlPlane || self == .joinControlPlane || self == .joinWorker }
}

public struct PlannedStep: Sendable, Hashable {
    public var name: StepName
    public var inputHash: String

    public init(name: StepName, inputHash: String) {
        self.name = name
        self.inputHash = inputHash
    }
}

/// What a host step waits for besides the host's previous step.
public enum StepDependency: Sendable, Hashable {
    /// `kubeadm init` on the first control plane (the cluster must exist).
    case initOfFirstControlPlane
    /// The join of the control plane listed before (control planes join one at a time).
    case previousControlPlaneJoin
}

public enum StepCatalogue {
    /// The cluster address among a step's inputs when it differs from the SSH address (so the hashes of
    /// hosts reached at their cluster address stay what they were before `privateAddress` existed).
    static func privateAddressInput(_ host: ClusterPlan.Host) -> [(String, String)] {
        guard let p = host.privateAddress, p != host.address else { return [] }
        return [("privateAddress", p)]
    }

    /// What `step` waits for on other hosts (each host's steps also run in order).
    public static func waitsFor(_ step: StepName) -> [StepDependency] {
        switch step {
        case .joinWorker, .nodeConfig: return [.initOfFirstControlPlane]
        case .joinControlPlane: return [.initOfFirstControlPlane, .previousControlPlaneJoin]
        case .prepare, .containerd, .kubernetesRepo, .kubernetesPackages, .images, .initControlPlane: return []
        }
    }

    /// The ordered steps `host` needs under `plan`, for a cluster not made yet (the first control plane listed
    /// runs `kubeadm init`).
    public static func steps(for host: ClusterPlan.Host, in plan: ClusterPlan) -> [PlannedStep] {
        steps(for: host, in: plan, initHost: plan.firstControlPlane?.name)
    }

    /// The ordered steps `host` needs under `plan`; `initHost` runs `kubeadm init`
    /// (`ClusterPlan.initControlPlane(state:)`: none once the host that ran it is gone), every other control
    /// plane joins. The repository comes first so that one package transaction installs containerd and the
    /// Kubernetes packages together; the input hashes are those of the steps' results (the same since the order
    /// changed), so hosts set up in the former order have nothing to redo.
    public static func steps(for host: ClusterPlan.Host, in plan: ClusterPlan, initHost: String?) -> [PlannedStep] {
        let k = plan.spec.kubernetes
        let net = plan.spec.network
        var steps: [PlannedStep] = [
            PlannedStep(name: .prepare, inputHash: Hashing.inputs([("step", "prepare/1")])),
            PlannedStep(name: .kubernetesRepo, inputHash: Hashing.inputs([
                ("step", "kubernetes-repo/1"), ("minor", plan.kubernetesMinor),
            ])),
            PlannedStep(name: .kubernetesPackages, inputHash: Hashing.inputs([
                ("step", "kubernetes-packages/1"), ("version", k.version),
            ])),
            PlannedStep(name: .containerd, inputHash: Hashing.inputs([
                ("step", "containerd/1"), ("version", plan.spec.containerRuntime.containerdVersion ?? "os"),
            ])),
            // The CNI's images too: a host that has not joined yet pulls them again when the CNI changes (one
            // that did init or join skips this step whatever its hash: `pending`).
            PlannedStep(name: .images, inputHash: Hashing.inputs([
                ("step", "images/1"), ("version", k.version), ("role", host.role.rawValue),
                ("cni", Releases.cniNodeImages(net).joined(separator: ",")),
            ])),
        ]
        if host.role == .controlPlane && host.name == initHost {
            steps.append(PlannedStep(name: .initControlPlane, inputHash: Hashing.inputs([
                ("step", "init/1"), ("name", host.name), ("address", host.address),
                ("endpoint", k.controlPlaneEndpoint ?? ""), ("sans", k.certSANs.joined(separator: ",")),
                ("podSubnet", net.podSubnet), ("serviceSubnet", net.serviceSubnet), ("dnsDomain", net.dnsDomain),
            ] + Self.privateAddressInput(host))))
        } else {
            let step: StepName = host.role == .controlPlane ? .joinControlPlane : .joinWorker
            steps.append(PlannedStep(name: step, inputHash: Hashing.inputs([
                ("step", "\(step.rawValue)/1"), ("name", host.name), ("address", host.address),
                ("endpoint", plan.apiEndpoint),
            ] + Self.privateAddressInput(host)
                + (plan.joinEndpoint == plan.apiEndpoint ? [] : [("joinEndpoint", plan.joinEndpoint)]))))
        }
        let labels = host.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var nodeConfig = [
            ("step", "node-config/1"), ("labels", labels.joined(separator: ",")),
            ("taints", host.taints.map(\.kubectlForm).joined(separator: ",")),
        ]
        // Without workers, control planes lose kubeadm's NoSchedule taint (else nothing could run); adding
        // workers later changes the hash, and node-config puts the taint back.
        if host.role == .controlPlane && plan.controlPlanesRunWorkloads { nodeConfig.append(("schedulable", "yes")) }
        steps.append(PlannedStep(name: .nodeConfig, inputHash: Hashing.inputs(nodeConfig)))
        return steps
    }

    /// The steps of `host` that still have to run, given what the state recorded.
    public static func pending(for host: ClusterPlan.Host, in plan: ClusterPlan, record: HostRecord?,
                               initHost: String?) -> [PlannedStep]
    {
        steps(for: host, in: plan, initHost: initHost).filter { step in
            guard let done = record?.steps[step.name.rawValue] else { return true }
            // A one-shot step (init/join) that finished is never repeated, whatever its inputs say now:
            // changing them means replacing the host, which the diff reports.
            return !step.name.isOneShot && done.inputHash != step.inputHash
        }.filter { step in
            // The images serve init and join only: a host that did one (perhaps made before this step
            // existed) has no use for them.
            step.name != .images || !(record?.steps.keys.contains { StepName(rawValue: $0)?.isOneShot == true } ?? false)
        }
    }
}

/// Cluster-level steps: run once per cluster after the first control plane is up.
public enum ClusterStepName: String, Sendable, Hashable, Codable, CaseIterable {
    /// Helm installed on the control plane that anchors the cluster (`ClusterPlan.anchorControlPlane(state:)`).
    case helm
    /// An admin kubeconfig fetched to the operator's machine.
    case kubeconfig
}

public struct PlannedClusterStep: Sendable, Hashable {
    public var name: ClusterStepName
    public var inputHash: String
    public init(name: ClusterStepName, inputHash: String) {
        self.name = name
        self.inputHash = inputHash
    }
}

public enum ClusterStepCatalogue {
    public static func steps(in plan: ClusterPlan) -> [PlannedClusterStep] {
        [
            PlannedClusterStep(name: .helm, inputHash: Hashing.inputs([
                ("step", "helm/1"), ("version", Releases.helmVersion),
            ])),
            PlannedClusterStep(name: .kubeconfig, inputHash: Hashing.inputs([
                ("step", "kubeconfig/1"), ("cluster", plan.name), ("endpoint", plan.apiEndpoint),
            ])),
        ]
    }

    /// Cluster steps not yet recorded in `state.cluster.steps` with the same input hash; and Helm again when
    /// the control plane it was installed on (`cluster.initializedOn`) leaves: it goes to the new anchor.
    public static func pending(in plan: ClusterPlan, state: ClusterState?) -> [PlannedClusterStep] {
        let anchorMoves = state?.cluster.initializedOn.map { $0 != plan.anchorControlPlane(state: state)?.name } ?? false
        return steps(in: plan).filter { s in
            (s.name == .helm && anchorMoves) || state?.cluster.steps[s.name.rawValue]?.inputHash != s.inputHash
        }
    }
}
