import Foundation

/// A chart in its official repository, at the version this tool pins.
public struct ChartRef: Sendable, Hashable, Codable {
    public var repoName: String
    public var repoURL: String
    public var chart: String
    public var version: String
}

/// One Helm release the plan asks for, with its final values.
public struct HelmRelease: Sendable, Hashable {
    /// The plan's add-on key (`metricsServer`, `monitoring`, …) or `cni`.
    public var addon: String
    public var name: String
    public var namespace: String
    public var chart: ChartRef
    /// The final values: ours, then the plan's extra values merged over them. Secrets appear as
    /// `Releases.secretPlaceholder(name)` and are filled in only in the file uploaded to the host.
    public var values: JSONValue
    /// State secrets the values refer to, by name.
    public var secrets: [String]
    /// User interfaces the release exposes, by service name: NodePort.
    public var nodePorts: [String: Int]

    /// Key in the state and in plan output: `addon/release`.
    public var key: String { "\(addon)/\(name)" }
    /// Hash of everything that makes a `helm upgrade` necessary.
    public var valuesHash: String {
        Hashing.inputs([("chart", "\(chart.repoURL)/\(chart.chart)"), ("version", chart.version),
                        ("namespace", namespace), ("values", values.canonicalJSON)])
    }
}

/// The charts, their pinned versions, and the values generated from the plan.
public enum Releases {
    public static let helmVersion = "v3.16.3"

    public static let flannel = ChartRef(repoName: "flannel", repoURL: "https://flannel-io.github.io/flannel",
                                         chart: "flannel", version: "v0.26.1")
    public static let tigeraOperator = ChartRef(repoName: "projectcalico", repoURL: "https://docs.tigera.io/calico/charts",
                                                chart: "tigera-operator", version: "v3.28.2")
    /// The images the pod network's DaemonSets run on every node (init containers first), by chart and pinned
    /// version (the charts' defaults: flannel's values.yaml `flannel.image_cni` and `flannel.image`; the images
    /// the tigera operator of that Calico release puts in calico-node and csi-node-driver). The images step
    /// pulls them ahead on every node (`NodeRecipes.pullImages`), so that the pods the CNI release starts find
    /// them present instead of pulling them on each node before it can be Ready. The images of its Deployments
    /// (one pod, on whichever node the scheduler picks) are not among them. A pinned CNI chart without an entry
    /// here is a test failure (`CNIImagesTests`).
    static let cniNodeImages: [String: [String]] = [
        "flannel@v0.26.1": [
            "docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2",
            "docker.io/flannel/flannel:v0.26.1",
        ],
        "tigera-operator@v3.28.2": [
            "docker.io/calico/pod2daemon-flexvol:v3.28.2",
            "docker.io/calico/cni:v3.28.2",
            "docker.io/calico/node:v3.28.2",
            "docker.io/calico/csi:v3.28.2",
            "docker.io/calico/node-driver-registrar:v3.28.2",
        ],
    ]

    /// The images of the plan's CNI every node runs (`cniNodeImages`), at its pinned chart version.
    public static func cniNodeImages(_ network: ClusterPlan.Network) -> [String] {
        let chart = cni(network).chart
        return cniNodeImages["\(chart.chart)@\(chart.version)"] ?? []
    }

    public static let metricsServer = ChartRef(repoName: "metrics-server",
                                               repoURL: "https://kubernetes-sigs.github.io/metrics-server",
                                               chart: "metrics-server", version: "3.12.2")
    public static let kubePrometheusStack = ChartRef(repoName: "prometheus-community",
                                                     repoURL: "https://prometheus-community.github.io/helm-charts",
                                                     chart: "kube-prometheus-stack", version: "65.1.1")
    public static let elasticsearch = ChartRef(repoName: "elastic", repoURL: "https://helm.elastic.co",
                                               chart: "elasticsearch", version: "8.5.1")
    public static let kibana = ChartRef(repoName: "elastic", repoURL: "https://helm.elastic.co", chart: "kibana",
                                        version: "8.5.1")
    public static let fluentd = ChartRef(repoName: "fluent", repoURL: "https://fluent.github.io/helm-charts",
                                         chart: "fluentd", version: "0.5.2")
    public static let jaeger = ChartRef(repoName: "jaegertracing", repoURL: "https://jaegertracing.github.io/helm-charts",
                                        chart: "jaeger", version: "3.3.1")
    public static let dashboard = ChartRef(repoName: "kubernetes-dashboard", repoURL: "https://kubernetes.github.io/dashboard",
                                           chart: "kubernetes-dashboard", version: "7.10.0")

    /// The secret holding Grafana's admin password (generated once, kept in the state).
    public static let grafanaPasswordSecret = "grafana-admin-password"

    public static func secretPlaceholder(_ name: String) -> String { "(secret \(name))" }

    /// Every release the plan asks for, CNI first, then the enabled add-ons in their fixed order.
    public static func desired(for plan: ClusterPlan) -> [HelmRelease] {
        var out = [cni(plan.spec.network)]
        let a = plan.spec.addons
        if a.metricsServer.enabled { out.append(contentsOf: metricsServer(a.metricsServer)) }
        if a.monitoring.enabled { out.append(contentsOf: monitoring(a.monitoring)) }
        if a.logging.enabled { out.append(contentsOf: logging(a.logging)) }
        if a.tracing.enabled { out.append(contentsOf: tracing(a.tracing)) }
        if a.dashboard.enabled { out.append(contentsOf: dashboard(a.dashboard)) }
        return out
    }

    // MARK: - values

    static func resources(_ requestCPU: String, _ requestMemory: String, _ limitCPU: String, _ limitMemory: String)
        -> JSONValue
    {
        .object(["requests": .object(["cpu": .string(requestCPU), "memory": .string(requestMemory)]),
                 "limits": .object(["cpu": .string(limitCPU), "memory": .string(limitMemory)])])
    }

    static func release(_ addon: String, _ name: String, _ namespace: String, _ chart: ChartRef,
                        _ plan: ClusterPlan.Addon?, values: JSONValue, secrets: [String] = [],
                        nodePorts: [String: Int] = [:]) -> HelmRelease
    {
        var chart = chart
        if let v = plan?.version { chart.version = v }
        // The plan's extra values go to the add-on's one release; multi-release add-ons take them per release
        // name (`values: {kibana: {...}}`).
        var extra = plan?.values ?? .object([:])
        if addon == "logging" { extra = extra[name] ?? .object([:]) }
        return HelmRelease(addon: addon, name: name, namespace: namespace, chart: chart,
                           values: values.merged(with: extra), secrets: secrets, nodePorts: nodePorts)
    }

    public static func cni(_ n: ClusterPlan.Network) -> HelmRelease {
        switch n.cni {
        case .flannel:
            // The pod CIDR comes from the same field kubeadm's podSubnet does.
            return release("cni", "flannel", "kube-flannel", flannel, nil, values: .object([
                "podCidr": .string(n.podSubnet),
                "flannel": .object(["backend": .string("vxlan")]),
            ]))
        case .calico:
            let pool: JSONValue = .object([
                "cidr": .string(n.podSubnet),
                "encapsulation": .string(n.calicoEncapsulation == .vxlan ? "VXLAN" : "IPIP"),
                "natOutgoing": .string("Enabled"),
                "nodeSelector": .string("all()"),
                "blockSize": .int(26),
            ])
            return release("cni", "calico", "tigera-operator", tigeraOperator, nil, values: .object([
                "installation": .object([
                    "enabled": .bool(true),
                    "kubernetesProvider": .string(""),
                    "calicoNetwork": .object(["ipPools": .array([pool])]),
                ]),
                "apiServer": .object(["enabled": .bool(false)]),
                "resources": resources("100m", "128Mi", "500m", "256Mi"),
            ]))
        }
    }

    public static func metricsServer(_ a: ClusterPlan.Addon) -> [HelmRelease] {
        // kubeadm's kubelets serve self-signed certificates: metrics-server must not verify them.
        [release("metricsServer", "metrics-server", "kube-system", metricsServer, a, values: .object([
            "args": .array([.string("--kubelet-insecure-tls")]),
            "resources": resources("50m", "64Mi", "250m", "256Mi"),
        ]))]
    }

    public static func monitoring(_ a: ClusterPlan.Addon) -> [HelmRelease] {
        let grafanaPort = a.nodePorts["grafana"] ?? PlanDefaults.nodePorts["monitoring"]!["grafana"]!
        let promPort = a.nodePorts["prometheus"] ?? PlanDefaults.nodePorts["monitoring"]!["prometheus"]!
        return [release("monitoring", "kube-prometheus-stack", "monitoring", kubePrometheusStack, a, values: .object([
            "grafana": .object([
                "adminPassword": .string(secretPlaceholder(grafanaPasswordSecret)),
                "service": .object(["type": .string("NodePort"), "nodePort": .int(grafanaPort)]),
                "resources": resources("100m", "128Mi", "500m", "512Mi"),
            ]),
            "prometheus": .object([
                "service": .object(["type": .string("NodePort"), "nodePort": .int(promPort)]),
                "prometheusSpec": .object([
                    "retention": .string("7d"),
                    "resources": resources("200m", "512Mi", "1", "2Gi"),
                ]),
            ]),
            "alertmanager": .object([
                "alertmanagerSpec": .object(["resources": resources("50m", "64Mi", "200m", "256Mi")]),
            ]),
            "prometheusOperator": .object(["resources": resources("100m", "128Mi", "500m", "512Mi")]),
            "kube-state-metrics": .object(["resources": resources("50m", "64Mi", "200m", "256Mi")]),
            "prometheus-node-exporter": .object(["resources": resources("50m", "32Mi", "200m", "128Mi")]),
        ]), secrets: [grafanaPasswordSecret], nodePorts: ["grafana": grafanaPort, "prometheus": promPort])]
    }

    public static func logging(_ a: ClusterPlan.Addon) -> [HelmRelease] {
        let kibanaPort = a.nodePorts["kibana"] ?? PlanDefaults.nodePorts["logging"]!["kibana"]!
        // Fluentd reads the password the elasticsearch chart generated from its secret, so none is in our values.
        let outputs = """
            <label @OUTPUT>
              <match **>
                @type elasticsearch
                host "elasticsearch-master"
                port 9200
                scheme https
                ssl_verify false
                user elastic
                password "#{ENV['ELASTIC_PASSWORD']}"
                logstash_format true
              </match>
            </label>

            """
        return [
            release("logging", "elasticsearch", "logging", elasticsearch, a, values: .object([
                "replicas": .int(1),
                "minimumMasterNodes": .int(1),
                "antiAffinity": .string("soft"),
                "esJavaOpts": .string("-Xms512m -Xmx512m"),
                "resources": resources("500m", "1Gi", "1", "1Gi"),
            ].merging(elasticsearchStorage(a)) { _, new in new })),
            release("logging", "kibana", "logging", kibana, a, values: .object([
                "elasticsearchHosts": .string("https://elasticsearch-master:9200"),
                "service": .object(["type": .string("NodePort"), "nodePort": .int(kibanaPort)]),
                "resources": resources("250m", "512Mi", "1", "1Gi"),
            ]), nodePorts: ["kibana": kibanaPort]),
            release("logging", "fluentd", "logging", fluentd, a, values: .object([
                "kind": .string("DaemonSet"),
                "resources": resources("100m", "128Mi", "500m", "512Mi"),
                "env": .array([
                    .object(["name": .string("FLUENTD_CONF"), "value": .string("../../../etc/fluent/fluent.conf")]),
                    .object(["name": .string("ELASTIC_PASSWORD"), "valueFrom": .object([
                        "secretKeyRef": .object(["name": .string("elasticsearch-master-credentials"),
                                                 "key": .string("password")]),
                    ])]),
                ]),
                "fileConfigs": .object(["04_outputs.conf": .string(outputs)]),
            ])),
        ]
    }

    /// Elasticsearch's data: on a claim of the plan's storage class, or (no class named) in the pod. A kubeadm
    /// cluster has no StorageClass and no provisioner, so a claim without a class would stay Pending and with it
    /// the pod and `helm --wait`.
    static func elasticsearchStorage(_ a: ClusterPlan.Addon) -> [String: JSONValue] {
        guard let storageClass = a.storageClass else {
            return ["persistence": .object(["enabled": .bool(false)])]
        }
        return [
            "persistence": .object(["enabled": .bool(true)]),
            "volumeClaimTemplate": .object([
                "accessModes": .array([.string("ReadWriteOnce")]),
                "storageClassName": .string(storageClass),
                "resources": .object(["requests": .object([
                    "storage": .string(a.storageSize ?? PlanDefaults.loggingStorageSize),
                ])]),
            ]),
        ]
    }

    /// The volume claim template Elasticsearch's StatefulSet gets from `values` (the chart's default:
    /// `persistence.enabled` true), `nil` when it has none. Kubernetes refuses any change of a StatefulSet's
    /// `volumeClaimTemplates`, so a release whose claim changes cannot be upgraded in place (see `Blockers`).
    static func elasticsearchClaim(_ values: JSONValue) -> JSONValue? {
        values["persistence"]?["enabled"] == .bool(false) ? nil : (values["volumeClaimTemplate"] ?? .object([:]))
    }

    public static func tracing(_ a: ClusterPlan.Addon) -> [HelmRelease] {
        // All-in-one with in-memory storage: right for a lab. The chart's query service is headless, so the
        // UI's NodePort is a Service of ours (see `GeneratedObjects`).
        let port = a.nodePorts["jaeger"] ?? PlanDefaults.nodePorts["tracing"]!["jaeger"]!
        return [release("tracing", "jaeger", "tracing", jaeger, a, values: .object([
            "provisionDataStore": .object(["cassandra": .bool(false)]),
            "storage": .object(["type": .string("memory")]),
            "allInOne": .object(["enabled": .bool(true), "resources": resources("100m", "256Mi", "500m", "512Mi")]),
            "agent": .object(["enabled": .bool(false)]),
            "collector": .object(["enabled": .bool(false)]),
            "query": .object(["enabled": .bool(false)]),
        ]), nodePorts: ["jaeger": port])]
    }

    public static func dashboard(_ a: ClusterPlan.Addon) -> [HelmRelease] {
        let port = a.nodePorts["dashboard"] ?? PlanDefaults.nodePorts["dashboard"]!["dashboard"]!
        let small = resources("50m", "64Mi", "250m", "256Mi")
        return [release("dashboard", "kubernetes-dashboard", "kubernetes-dashboard", dashboard, a, values: .object([
            "api": .object(["containers": .object(["resources": small])]),
            "auth": .object(["containers": .object(["resources": small])]),
            "web": .object(["containers": .object(["resources": small])]),
            "metricsScraper": .object(["containers": .object(["resources": small])]),
            "kong": .object([
                "proxy": .object([
                    "type": .string("NodePort"),
                    "http": .object(["enabled": .bool(false)]),
                    "tls": .object(["nodePort": .int(port)]),
                ]),
                "resources": small,
            ]),
        ]), nodePorts: ["dashboard": port])]
    }
}
