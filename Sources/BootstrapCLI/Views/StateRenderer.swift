import BootstrapCore
import Foundation

/// What `bootstrap show` prints: a summary of the recorded state. Secret values appear only when asked.
/// What a cluster offers its users, like Terraform outputs: where the API is, the kubeconfig, and the add-ons'
/// web interfaces (the first control plane's address and each NodePort). The address is the one the operator
/// can reach: the host's public address where it has one (an EC2 instance), else the address bootstrap uses.
struct ClusterOutputs: Sendable, Hashable, Codable {
    var apiEndpoint: String?
    var kubeconfig: String?
    /// By service (`grafana`, `prometheus`, `kibana`, `jaeger`, `dashboard`).
    var urls: [String: String]
    /// Grafana's `admin` password: `<redacted>` unless asked for.
    var grafanaAdminPassword: String?

    static let schemes = ["dashboard": "https"]

    init(_ s: ClusterState, kubeconfig: String?, showSecrets: Bool) {
        self.kubeconfig = kubeconfig
        let first = s.cluster.initializedOn.flatMap { s.hosts[$0] }
            ?? s.hosts.sorted { $0.key < $1.key }.first { $0.value.role == .controlPlane }?.value
        let address = first.map { $0.publicAddress ?? $0.address }
        // An endpoint that is the first control plane's SSH address is reached at its public one (its API
        // certificate names both); a controlPlaneEndpoint is printed as the plan gives it.
        if let first, let endpoint = s.cluster.endpoint, endpoint == "\(first.address):6443", let address {
            apiEndpoint = "\(address):6443"
        } else {
            apiEndpoint = s.cluster.endpoint
        }
        var urls: [String: String] = [:]
        if let address {
            for rec in s.addons.values {
                for (service, port) in rec.nodePorts {
                    urls[service] = "\(Self.schemes[service] ?? "http")://\(address):\(port)"
                }
            }
        }
        self.urls = urls
        grafanaAdminPassword = s.cluster.secrets[Releases.grafanaPasswordSecret].map {
            showSecrets ? $0.value.revealed : "<redacted>"
        }
    }

    var text: String {
        var pairs: [(String, String)] = []
        if let e = apiEndpoint { pairs.append(("api_endpoint", "https://\(e)")) }
        if let k = kubeconfig { pairs.append(("kubeconfig", k)) }
        for (service, url) in urls.sorted(by: { $0.key < $1.key }) { pairs.append(("\(service)_url", url)) }
        if let p = grafanaAdminPassword { pairs.append(("grafana_login", "admin / \(p)")) }
        let width = pairs.map(\.0.count).max() ?? 0
        return pairs.isEmpty ? "" : "Outputs:\n" + pairs.map { k, v in
            "  " + k.padding(toLength: width, withPad: " ", startingAt: 0) + " = \(v)\n"
        }.joined()
    }
}

enum StateRenderer {
    static func summary(_ s: ClusterState, path: String, showSecrets: Bool = false, kubeconfig: String? = nil)
        -> String
    {
        let c = s.cluster
        var out = "Cluster \(c.name)  (state \(path), serial \(s.serial), lineage \(s.lineage), written by bootstrap \(s.toolVersion))\n"
        var facts: [String] = []
        if let v = c.kubernetesVersion { facts.append("Kubernetes \(v)") }
        if let e = c.endpoint { facts.append("endpoint \(e)") }
        if let n = c.cni { facts.append("CNI \(n)") }
        if let p = c.podSubnet { facts.append("pods \(p)") }
        if let p = c.serviceSubnet { facts.append("services \(p)") }
        if !facts.isEmpty { out += "  " + facts.joined(separator: ", ") + "\n" }
        out += "  " + (c.initializedOn.map { "initialised on \($0)" } ?? "not initialised yet") + "\n"
        if let h = c.caCertHash { out += "  CA cert hash \(h)\n" }
        if !c.steps.isEmpty {
            out += "  cluster steps done: \(c.steps.keys.sorted().joined(separator: ", "))\n"
        }
        for (name, sec) in c.secrets.sorted(by: { $0.key < $1.key }) {
            let exp = sec.expiresAt.map { ", expires \(Timestamp.iso8601($0))" } ?? ""
            out += "  secret \(name): \(showSecrets ? sec.value.revealed : "\(sec.value)")\(exp)\n"
        }
        out += "Hosts (\(s.hosts.count)):\n"
        if s.hosts.isEmpty { out += "  none\n" }
        let width = s.hosts.keys.map(\.count).max() ?? 0
        let order = s.hosts.sorted { a, b in
            a.value.role != b.value.role ? a.value.role == .controlPlane : a.key < b.key
        }
        func rank(_ k: String) -> Int { StepName(rawValue: k).flatMap { StepName.allCases.firstIndex(of: $0) } ?? 99 }
        for (name, h) in order {
            let done = h.steps.keys.sorted { rank($0) != rank($1) ? rank($0) < rank($1) : $0 < $1 }
            let pad = String(repeating: " ", count: max(0, width - name.count))
            var line = "  \(name)\(pad)  \(h.address):\(h.port)  \(h.role.rawValue)"
            if let f = h.facts { line += "  \(f.osID) \(f.osVersion) \(f.architecture)" }
            line += "  steps done: " + (done.isEmpty ? "none" : done.joined(separator: ", "))
            out += line + "\n"
            if let c = h.facts?.certificates { out += "  \(String(repeating: " ", count: width))  \(c.summary)\n" }
        }
        if !s.addons.isEmpty {
            out += "Helm releases (\(s.addons.count)):\n"
            for (name, a) in s.addons.sorted(by: { $0.key < $1.key }) {
                out += "  \(name): chart \(a.chart) \(a.version), release \(a.release) in \(a.namespace)\n"
            }
        }
        if !s.manifests.isEmpty {
            out += "Manifest objects (\(s.manifests.count)):\n"
            for (key, m) in s.manifests.sorted(by: { $0.key < $1.key }) { out += "  \(key)  from \(m.file)\n" }
        }
        out += ClusterOutputs(s, kubeconfig: kubeconfig, showSecrets: showSecrets).text
        return out
    }

    /// The state with every secret value replaced by `<redacted>` (for `show --json`).
    static func redacted(_ s: ClusterState) -> ClusterState {
        var r = s
        for k in r.cluster.secrets.keys { r.cluster.secrets[k]?.value = Secret("<redacted>") }
        return r
    }
}
