import Foundation
import Yams

/// A line and column (both from 1) in the plan text.
public struct SourceLocation: Sendable, Hashable, Codable {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// Reads a plan (YAML or JSON) into a `ClusterPlan`, applying `PlanDefaults` and running `Validation`.
/// Never throws: every problem becomes a `Diagnostic`, and all of them are reported at once.
public enum PlanLoader {
    /// Keys each mapping of the format accepts, by field path pattern (list indexes as `[]`).
    static let schema: [String: [String]] = [
        "": ["apiVersion", "kind", "metadata", "spec"],
        "metadata": ["name"],
        "spec": ["kubernetes", "network", "ssh", "hosts", "containerRuntime", "addons", "manifests", "namespaces",
                 "parallelism", "timeouts", "certificates", "upgrade", "provider"],
        "spec.provider": ["ec2"],
        "spec.provider.ec2": ["region", "endpoint", "hosts", "sshAddress", "manageSecurityGroups", "operatorCidrs"],
        "spec.provider.ec2.hosts[]": ["role", "tags", "instanceIds"],
        "spec.timeouts": ["packages", "init", "join", "helm", "waitReady"],
        "spec.certificates": ["renewBefore"],
        "spec.upgrade": ["maxUnavailable", "drainTimeout"],
        "spec.kubernetes": ["version", "controlPlaneEndpoint", "certSANs"],
        "spec.network": ["cni", "podSubnet", "serviceSubnet", "dnsDomain", "calico"],
        "spec.network.calico": ["encapsulation"],
        "spec.ssh": ["user", "keyPath", "knownHosts", "port", "hostKeyPolicy", "connectTimeout", "bastion"],
        "spec.ssh.bastion": ["address", "port", "user", "keyPath"],
        "spec.hosts[]": ["name", "address", "privateAddress", "role", "port", "user", "keyPath", "labels", "taints"],
        "spec.hosts[].taints[]": ["key", "value", "effect"],
        "spec.containerRuntime": ["containerd"],
        "spec.containerRuntime.containerd": ["version"],
        "spec.addons": ["metricsServer", "monitoring", "logging", "tracing", "dashboard"],
        "spec.addons.*": ["enabled", "version", "values", "nodePorts"],
        "spec.addons.logging": ["enabled", "version", "values", "nodePorts", "storageClass", "storageSize"],
        "spec.addons.monitoring.nodePorts": ["grafana", "prometheus"],
        "spec.addons.logging.nodePorts": ["kibana"],
        "spec.addons.tracing.nodePorts": ["jaeger"],
        "spec.addons.dashboard.nodePorts": ["dashboard"],
        "spec.namespaces[]": ["name", "defaultDeny", "limitRange", "access"],
        "spec.namespaces[].limitRange": ["defaultRequest", "default"],
        "spec.namespaces[].limitRange.*": ["cpu", "memory"],
        "spec.namespaces[].access[]": ["role", "users", "groups"],
    ]

    /// `recorded`: what the state says of the cluster, when the caller read it (`validate`): the plan's
    /// version is then checked against kubeadm's upgrade rules too (`UpgradeRules`).
    public static func load(text: String, path: String, baseDirectory: String,
                            fileExists: (String) -> Bool, recorded: RecordedCluster = .unknown) -> PlanLoadResult {
        let r = NodeReader()
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                r.error("", nil, "the plan is empty",
                        expected: "a mapping with apiVersion, kind, metadata and spec")
                return PlanLoadResult(plan: nil, diagnostics: r.diagnostics)
            }
            root = node
        } catch let e as YamlError {
            r.diagnostics.append(syntaxDiagnostic(e))
            return PlanLoadResult(plan: nil, diagnostics: r.diagnostics)
        } catch {
            r.error("", nil, "cannot read the plan: \(error)")
            return PlanLoadResult(plan: nil, diagnostics: r.diagnostics)
        }
        if case .scalar = root, NodeReader.tag(root) == Tag.Name.null.rawValue {
            r.error("", root, "the plan is empty", expected: "a mapping with apiVersion, kind, metadata and spec")
            return PlanLoadResult(plan: nil, diagnostics: r.diagnostics)
        }
        guard let top = r.mapping(root, "", schema: "") else {
            return PlanLoadResult(plan: nil, diagnostics: r.diagnostics)
        }
        var plan = decodePlan(top, r)
        plan.source = PlanSource(path: path, baseDirectory: baseDirectory)
        var semantic = Validation.validate(plan, fileExists: fileExists, locations: r.locations, skip: r.reported)
        if !semantic.hasErrors { semantic += Validation.upgrade(plan, recorded: recorded, locations: r.locations) }
        let all = (r.diagnostics + semantic).inDocumentOrder
        // The first `reportLimit` in document order, and how many more. (Every unknown field the reader only
        // counted comes after the ones it reported, so these are the file's first ones.)
        let rest = Array(all.dropFirst(reportLimit))
        return PlanLoadResult(plan: all.hasErrors || r.omittedErrors > 0 ? nil : plan,
                              diagnostics: Array(all.prefix(reportLimit)),
                              omittedErrors: r.omittedErrors + rest.errors.count, omittedWarnings: rest.warnings.count)
    }

    /// How many diagnostics a load reports in full; past that, they are counted.
    public static let reportLimit = 100

    static func syntaxDiagnostic(_ e: YamlError) -> Diagnostic {
        switch e {
        case .scanner(let ctx, let problem, let mark, _), .parser(let ctx, let problem, let mark, _),
             .composer(let ctx, let problem, let mark, _):
            if problem.contains("another document") || (ctx?.text.contains("single document") ?? false) {
                return Diagnostic(severity: .error, path: "", line: mark.line, column: mark.column,
                                  message: "the file holds more than one YAML document (one plan per file)")
            }
            let context = ctx.map { " (\($0.text))" } ?? ""
            return Diagnostic(severity: .error, path: "", line: mark.line, column: mark.column,
                              message: "not valid YAML or JSON: \(problem)\(context)")
        default:
            return Diagnostic(severity: .error, path: "", message: "not valid YAML or JSON: \(e)")
        }
    }
}
