import Foundation
import BootstrapCore

/// The chart values bootstrap's generated values set, per pinned chart version, each looked up in that version's
/// `values.yaml` (and, where the file leaves a key commented out, in the template that reads it). Helm ignores a
/// key a chart does not have, so a misspelt or moved key would otherwise fail silently; a test keeps
/// `Releases` to these lists. They describe our values only: the plan's extra `values` may use any key.
/// Some of the copies read were of a neighbouring release of the chart (the key then has the same place and
/// meaning in both): re-read the chart's values.yaml whenever a pinned version changes.
///
/// Path syntax: keys joined by `.`; `[]` stands for every item of a list; a key containing `.` is written
/// `["key"]`; a final `.*` admits anything below the key (a Kubernetes object the chart copies verbatim,
/// such as a list of `EnvVar`).
enum ChartValues {
    /// `chart version` (as `ChartRef.chart` and `ChartRef.version`) → the value paths we rely on.
    static let verified: [String: [String]] = [
        // flannel-io/flannel chart/kube-flannel/values.yaml (`podCidr`, `flannel.backend`), read by
        // templates/config.yaml into net-conf.json. The chart's own DaemonSet sets the flanneld requests.
        "flannel v0.26.1": entry([
            "podCidr",
            "flannel.backend",
        ]),
        // projectcalico/calico charts/tigera-operator/values.yaml: `installation` minus `enabled` becomes the
        // Installation's spec (templates/crs/custom-resources.yaml), so `calicoNetwork.ipPools[]` takes the
        // operator.tigera.io/v1 IPPool fields; `resources` is the operator container's
        // (templates/tigera-operator/02-tigera-operator.yaml).
        "tigera-operator v3.28.2": entry([
            "installation.enabled",
            "installation.kubernetesProvider",
            "installation.calicoNetwork.ipPools[].cidr",
            "installation.calicoNetwork.ipPools[].encapsulation",
            "installation.calicoNetwork.ipPools[].natOutgoing",
            "installation.calicoNetwork.ipPools[].nodeSelector",
            "installation.calicoNetwork.ipPools[].blockSize",
            "apiServer.enabled",
        ], resources: ["resources"]),
        // kubernetes-sigs/metrics-server charts/metrics-server/values.yaml: `args` (list, appended to
        // `defaultArgs`), `resources`.
        "metrics-server 3.12.2": entry([
            "args[]",
        ], resources: ["resources"]),
        // prometheus-community/helm-charts charts/kube-prometheus-stack/values.yaml (`grafana.adminPassword`,
        // `prometheus.service.{type,nodePort}`, `prometheus.prometheusSpec.{retention,resources}`,
        // `alertmanager.alertmanagerSpec.resources`, `prometheusOperator.resources`); the subcharts'
        // values.yaml for the rest: grafana/helm-charts charts/grafana (`service.type`, `resources`;
        // `service.nodePort` is read by templates/service.yaml when the type is NodePort),
        // prometheus-community/helm-charts charts/kube-state-metrics and charts/prometheus-node-exporter
        // (`resources`).
        "kube-prometheus-stack 65.1.1": entry([
            "grafana.adminPassword",
            "grafana.service.type",
            "grafana.service.nodePort",
            "prometheus.service.type",
            "prometheus.service.nodePort",
            "prometheus.prometheusSpec.retention",
        ], resources: ["grafana.resources", "prometheus.prometheusSpec.resources",
                       "alertmanager.alertmanagerSpec.resources", "prometheusOperator.resources",
                       "kube-state-metrics.resources", "prometheus-node-exporter.resources"]),
        // elastic/helm-charts elasticsearch/values.yaml. The chart names its StatefulSet and its generated
        // credentials Secret after `clusterName`-`nodeGroup` (defaults elasticsearch, master): fluentd and kibana
        // rely on `elasticsearch-master` and `elasticsearch-master-credentials`, so we leave both alone.
        "elasticsearch 8.5.1": entry([
            "replicas",
            "minimumMasterNodes",
            "antiAffinity",
            "esJavaOpts",
            "persistence.enabled",
            "volumeClaimTemplate.accessModes[]",
            "volumeClaimTemplate.storageClassName",
            "volumeClaimTemplate.resources.requests.storage",
        ], resources: ["resources"]),
        // elastic/helm-charts kibana/values.yaml: `elasticsearchHosts`, `service.{type,nodePort}`, `resources`.
        "kibana 8.5.1": entry([
            "elasticsearchHosts",
            "service.type",
            "service.nodePort",
        ], resources: ["resources"]),
        // fluent/helm-charts charts/fluentd/values.yaml: `kind`, `resources`, `env` (a list of EnvVar, copied
        // into the container by templates/_pod.tpl), `fileConfigs` (one entry per file under
        // /etc/fluent/config.d; 04_outputs.conf is the chart's output file, which ours replaces).
        "fluentd 0.5.2": entry([
            "kind",
            "env[].*",
            "fileConfigs[\"04_outputs.conf\"]",
        ], resources: ["resources"]),
        // jaegertracing/helm-charts charts/jaeger/values.yaml: `provisionDataStore.cassandra`, `storage.type`,
        // `allInOne.enabled`, `agent.enabled`, `collector.enabled`, `query.enabled`; `allInOne.resources` is
        // commented out there and read by templates/allinone-deploy.yaml.
        "jaeger 3.3.1": entry([
            "provisionDataStore.cassandra",
            "storage.type",
            "allInOne.enabled",
            "agent.enabled",
            "collector.enabled",
            "query.enabled",
        ], resources: ["allInOne.resources"]),
        // kubernetes/dashboard charts/kubernetes-dashboard/values.yaml (`{api,auth,web,metricsScraper}.containers
        // .resources`, `kong.proxy.{type,http.enabled}`), and the Kong/charts charts/kong/values.yaml subchart for
        // `kong.resources` and `kong.proxy.tls.nodePort` (commented out there, read by its service template when
        // the type is NodePort).
        "kubernetes-dashboard 7.10.0": entry([
            "kong.proxy.type",
            "kong.proxy.http.enabled",
            "kong.proxy.tls.nodePort",
        ], resources: ["api.containers.resources", "auth.containers.resources", "web.containers.resources",
                       "metricsScraper.containers.resources", "kong.resources"]),
    ]

    /// The key of `chart` in `verified`.
    static func key(_ chart: ChartRef) -> String { "\(chart.chart) \(chart.version)" }

    /// `paths`, plus CPU and memory requests and limits under each of `resources`.
    static func entry(_ paths: [String], resources: [String] = []) -> [String] {
        let quantities = ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"]
        return paths + resources.flatMap { prefix in quantities.map { "\(prefix).\($0)" } }
    }

    /// Every leaf of `value` as a path (see the type's comment). Empty mappings and lists count as leaves.
    static func leafPaths(_ value: JSONValue) -> [String] {
        var out: [String] = []
        func walk(_ v: JSONValue, _ path: String) {
            switch v {
            case .object(let o) where !o.isEmpty:
                for (k, child) in o.sorted(by: { $0.key < $1.key }) { walk(child, join(path, k)) }
            case .array(let a) where !a.isEmpty:
                for child in a { walk(child, path + "[]") }
            default:
                out.append(path)
            }
        }
        walk(value, "")
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }

    static func join(_ path: String, _ key: String) -> String {
        if key.contains(".") || key.contains("[") || key.contains("\"") || key.isEmpty {
            return path + "[\"" + key + "\"]"
        }
        return path.isEmpty ? key : path + "." + key
    }

    /// Whether `path` is one of `known`, or lies below a `….*` entry of it.
    static func admits(_ known: [String], _ path: String) -> Bool {
        known.contains { k in
            if k.hasSuffix(".*") {
                let prefix = String(k.dropLast(2))
                return path.hasPrefix(prefix + ".") || path.hasPrefix(prefix + "[")
            }
            return k == path
        }
    }

    /// The leaf paths of `values` that the list for `chart` does not admit; nil when there is no list for it.
    static func unknownPaths(in values: JSONValue, chart: ChartRef) -> [String]? {
        guard let known = verified[key(chart)] else { return nil }
        return leafPaths(values).filter { !admits(known, $0) }
    }
}
