/// Every default of the plan format, in one place. `PlanLoader` takes a value from here whenever the plan
/// leaves a field out, and the memberwise initialisers of `ClusterPlan` default to the same values;
/// `bootstrap validate --show-defaults` prints the result.
public enum PlanDefaults {
    public static let cni: ClusterPlan.CNI = .flannel
    /// The pod network each CNI's stock manifest expects.
    public static func podSubnet(for cni: ClusterPlan.CNI) -> String {
        switch cni {
        case .flannel: return "10.244.0.0/16"
        case .calico: return "192.168.0.0/16"
        }
    }
    public static let serviceSubnet = "10.96.0.0/12"
    public static let dnsDomain = "cluster.local"
    public static let calicoEncapsulation: ClusterPlan.CalicoEncapsulation = .vxlan

    public static let sshUser = "ubuntu"
    public static let sshKeyPath = "~/.ssh/id_ed25519"
    public static let sshKnownHosts = "~/.ssh/known_hosts"
    public static let sshPort = 22
    public static let hostKeyPolicy: ClusterPlan.HostKeyPolicy = .strict
    public static let connectTimeout = 10

    /// Port added to a `controlPlaneEndpoint` given without one.
    public static let apiServerPort = 6443
    /// How many hosts are worked on at once.
    public static let parallelism = 10

    /// Time limits per kind of step, in seconds (`spec.timeouts`), and the range a plan may set.
    public enum Timeout {
        public static let packages = 600
        public static let initialize = 600
        public static let join = 600
        public static let helm = 900
        public static let waitReady = 600
        public static let range = 30...86_400
    }
    /// `spec.upgrade`: one worker at a time, each drain given five minutes.
    public enum Upgrade {
        public static let maxUnavailable = "1"
        public static let drainTimeout = 300
    }
    /// Ctrl-C: running steps get this long to finish before their remote commands are stopped.
    public static let interruptGraceSeconds = 10

    /// What Elasticsearch's claim requests when the plan names a storage class but no size.
    public static let loggingStorageSize = "5Gi"

    /// NodePorts of the add-ons' user interfaces, by add-on and service.
    public static let nodePorts: [String: [String: Int]] = [
        "monitoring": ["grafana": 30300, "prometheus": 30090],
        "logging": ["kibana": 30601],
        "tracing": ["jaeger": 30686],
        "dashboard": ["dashboard": 30443],
    ]

    /// The LimitRange defaults of a namespace that asks for one without saying more (sized for a small lab).
    public static let limitDefaults = ClusterPlan.LimitDefaults(requestCPU: "100m", requestMemory: "128Mi",
                                                                limitCPU: "500m", limitMemory: "512Mi")

    /// A bastion inherits the plan's SSH user and key unless it names its own.
    public static func bastion(address: String, port: Int?, user: String?, keyPath: String?,
                               ssh: ClusterPlan.SSHDefaults) -> ClusterPlan.Bastion {
        ClusterPlan.Bastion(address: address, port: port ?? sshPort, user: user ?? ssh.user,
                            keyPath: keyPath ?? ssh.keyPath)
    }
}
