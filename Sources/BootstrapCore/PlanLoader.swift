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
                 "parallelism", "timeouts"],
        "spec.timeouts": ["packages", "init", "join", "helm", "waitReady"],
        "spec.kubernetes": ["version", "controlPlaneEndpoint", "certSANs"],
        "spec.network": ["cni", "podSubnet", "serviceSubnet", "dnsDomain", "calico"],
        "spec.network.calico": ["encapsulation"],
        "spec.ssh": ["user", "keyPath", "knownHosts", "port", "hostKeyPolicy", "connectTimeout", "bastion"],
        "spec.ssh.bastion": ["address", "port", "user", "keyPath"],
        "spec.hosts[]": ["name", "address", "role", "port", "user", "keyPath", "labels", "taints"],
        "spec.hosts[].taints[]": ["key", "value", "effect"],
        "spec.containerRuntime": ["containerd"],
        "spec.containerRuntime.containerd": ["version"],
        "spec.addons": ["metricsServer", "monitoring", "logging", "tracing", "dashboard"],
        "spec.addons.*": ["enabled", "version", "values", "nodePorts"],
        "spec.addons.monitoring.nodePorts": ["grafana", "prometheus"],
        "spec.addons.logging.nodePorts": ["kibana"],
        "spec.addons.tracing.nodePorts": ["jaeger"],
        "spec.addons.dashboard.nodePorts": ["dashboard"],
        "spec.namespaces[]": ["name", "defaultDeny", "limitRange", "access"],
        "spec.namespaces[].limitRange": ["defaultRequest", "default"],
        "spec.namespaces[].limitRange.*": ["cpu", "memory"],
        "spec.namespaces[].access[]": ["role", "users", "groups"],
    ]

    public static func load(text: String, path: String, baseDirectory: String,
                            fileExists: (String) -> Bool) -> PlanLoadResult {
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
        let semantic = Validation.validate(plan, fileExists: fileExists, locations: r.locations, skip: r.reported)
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

    // MARK: decoding, field by field; bad fields get a placeholder so the rest is still checked

    static func decodePlan(_ top: Fields, _ r: NodeReader) -> ClusterPlan {
        if let v = r.string(top, "apiVersion", required: true), v != ClusterPlan.apiVersion {
            r.error("apiVersion", top.values["apiVersion"], "unknown apiVersion \"\(v)\"",
                    expected: ClusterPlan.apiVersion)
        }
        if let k = r.string(top, "kind", required: true), k != ClusterPlan.kind {
            r.error("kind", top.values["kind"], "unknown kind \"\(k)\"", expected: ClusterPlan.kind)
        }
        var name = ""
        if let meta = r.mappingField(top, "metadata", required: true) {
            name = r.string(meta, "name", required: true) ?? ""
        }
        var spec = ClusterPlan.Spec(kubernetes: ClusterPlan.Kubernetes(version: ""), hosts: [],
                                    parallelism: PlanDefaults.parallelism)
        if let s = r.mappingField(top, "spec", required: true) {
            spec = decodeSpec(s, r)
        }
        return ClusterPlan(metadata: ClusterPlan.Metadata(name: name), spec: spec)
    }

    static func decodeSpec(_ s: Fields, _ r: NodeReader) -> ClusterPlan.Spec {
        var k8s = ClusterPlan.Kubernetes(version: "")
        if let k = r.mappingField(s, "kubernetes", required: true) {
            if let v = r.string(k, "version", required: true) {
                k8s.version = v
                if case .success(let norm) = KubernetesReleases.resolve(v) { k8s.version = norm }
            }
            if var e = r.string(k, "controlPlaneEndpoint") {
                if !e.contains(":") { e += ":\(PlanDefaults.apiServerPort)" }
                k8s.controlPlaneEndpoint = e
            }
            k8s.certSANs = r.stringList(k, "certSANs") ?? []
        }

        var net = ClusterPlan.Network(cni: PlanDefaults.cni, podSubnet: "", serviceSubnet: PlanDefaults.serviceSubnet,
                                      dnsDomain: PlanDefaults.dnsDomain,
                                      calicoEncapsulation: PlanDefaults.calicoEncapsulation)
        var podSubnetGiven = false
        if let n = r.mappingField(s, "network") {
            if let c: ClusterPlan.CNI = r.enumValue(n, "cni") { net.cni = c }
            if let p = r.string(n, "podSubnet") { net.podSubnet = p; podSubnetGiven = true }
            if let p = r.string(n, "serviceSubnet") { net.serviceSubnet = p }
            if let d = r.string(n, "dnsDomain") { net.dnsDomain = d }
            if let c = r.mappingField(n, "calico") {
                if let e: ClusterPlan.CalicoEncapsulation = r.enumValue(c, "encapsulation") {
                    net.calicoEncapsulation = e
                }
                if net.cni != .calico {
                    r.warning(c.path, c.node, "ignored: the plan uses \(net.cni.rawValue), not calico")
                }
            }
        }
        if !podSubnetGiven { net.podSubnet = PlanDefaults.podSubnet(for: net.cni) }

        var ssh = ClusterPlan.SSHDefaults(user: PlanDefaults.sshUser, keyPath: PlanDefaults.sshKeyPath,
                                          knownHosts: PlanDefaults.sshKnownHosts, port: PlanDefaults.sshPort,
                                          hostKeyPolicy: PlanDefaults.hostKeyPolicy, bastion: nil,
                                          connectTimeout: PlanDefaults.connectTimeout)
        if let m = r.mappingField(s, "ssh") {
            if let v = r.string(m, "user") { ssh.user = v; ssh.explicit.insert("user") }
            if let v = r.string(m, "keyPath") { ssh.keyPath = v; ssh.explicit.insert("keyPath") }
            if let v = r.string(m, "knownHosts") { ssh.knownHosts = v; ssh.explicit.insert("knownHosts") }
            if let v = r.int(m, "port") { ssh.port = v; ssh.explicit.insert("port") }
            if let v: ClusterPlan.HostKeyPolicy = r.enumValue(m, "hostKeyPolicy") {
                ssh.hostKeyPolicy = v
                ssh.explicit.insert("hostKeyPolicy")
            }
            if let v = r.int(m, "connectTimeout") { ssh.connectTimeout = v }
            if let b = r.mappingField(m, "bastion") {
                let address = r.string(b, "address", required: true) ?? ""
                ssh.explicit.insert("bastion")
                ssh.bastion = PlanDefaults.bastion(address: address, port: r.int(b, "port"),
                                                   user: r.string(b, "user"), keyPath: r.string(b, "keyPath"),
                                                   ssh: ssh)
            }
        }

        var hosts: [ClusterPlan.Host] = []
        if let list = r.sequenceField(s, "hosts", required: true) {
            for (i, node) in list.items.enumerated() {
                let p = "\(list.path)[\(i)]"
                guard let h = r.mapping(node, p, schema: "spec.hosts[]") else {
                    // Keep indexes aligned with the file: later checks name hosts by position.
                    hosts.append(ClusterPlan.Host(name: "", address: "", role: .worker))
                    continue
                }
                var host = ClusterPlan.Host(name: r.string(h, "name", required: true) ?? "",
                                            address: r.string(h, "address", required: true) ?? "",
                                            role: r.enumValue(h, "role", required: true) ?? .worker)
                host.port = r.int(h, "port")
                host.user = r.string(h, "user")
                host.keyPath = r.string(h, "keyPath")
                host.labels = r.stringMap(h, "labels") ?? [:]
                if let taints = r.sequenceField(h, "taints") {
                    for (j, tn) in taints.items.enumerated() {
                        guard let t = r.mapping(tn, "\(taints.path)[\(j)]", schema: "spec.hosts[].taints[]") else {
                            host.taints.append(ClusterPlan.Taint(key: "", effect: .noSchedule))
                            continue
                        }
                        host.taints.append(ClusterPlan.Taint(key: r.string(t, "key", required: true) ?? "",
                                                             value: r.string(t, "value"),
                                                             effect: r.enumValue(t, "effect", required: true)
                                                                 ?? .noSchedule))
                    }
                }
                hosts.append(host)
            }
        }

        var runtime = ClusterPlan.ContainerRuntime()
        if let c = r.mappingField(s, "containerRuntime"), let cd = r.mappingField(c, "containerd") {
            runtime.containerdVersion = r.string(cd, "version")
        }

        var addons = ClusterPlan.Addons(monitoring: .init(nodePorts: PlanDefaults.nodePorts["monitoring"]!),
                                        logging: .init(nodePorts: PlanDefaults.nodePorts["logging"]!),
                                        tracing: .init(nodePorts: PlanDefaults.nodePorts["tracing"]!),
                                        dashboard: .init(nodePorts: PlanDefaults.nodePorts["dashboard"]!))
        if let a = r.mappingField(s, "addons") {
            func addon(_ key: String) -> ClusterPlan.Addon {
                guard let m = r.mappingField(a, key, schema: "spec.addons.*") else {
                    return ClusterPlan.Addon(nodePorts: PlanDefaults.nodePorts[key] ?? [:])
                }
                var addon = ClusterPlan.Addon(enabled: r.bool(m, "enabled") ?? false, version: r.string(m, "version"))
                if let v = m.values["values"] {
                    let p = m.path + ".values"
                    if case .mapping = v { addon.values = NodeReader.json(v) } else if !NodeReader.isNull(v) {
                        r.error(p, v, "expected a mapping of Helm values, found \(NodeReader.describe(v))")
                    }
                }
                if let ports = r.mappingField(m, "nodePorts", schema: "spec.addons.\(key).nodePorts") {
                    for k in ports.values.keys.sorted() { if let port = r.int(ports, k) { addon.nodePorts[k] = port } }
                }
                for (service, port) in PlanDefaults.nodePorts[key] ?? [:] where addon.nodePorts[service] == nil {
                    addon.nodePorts[service] = port
                }
                return addon
            }
            addons = ClusterPlan.Addons(metricsServer: addon("metricsServer"), monitoring: addon("monitoring"),
                                        logging: addon("logging"), tracing: addon("tracing"),
                                        dashboard: addon("dashboard"))
        }

        var timeouts = ClusterPlan.Timeouts()
        if let t = r.mappingField(s, "timeouts") {
            if let v = r.int(t, "packages") { timeouts.packages = v }
            if let v = r.int(t, "init") { timeouts.`init` = v }
            if let v = r.int(t, "join") { timeouts.join = v }
            if let v = r.int(t, "helm") { timeouts.helm = v }
            if let v = r.int(t, "waitReady") { timeouts.waitReady = v }
        }

        return ClusterPlan.Spec(kubernetes: k8s, network: net, ssh: ssh, hosts: hosts, containerRuntime: runtime,
                                addons: addons, manifests: r.stringList(s, "manifests") ?? [],
                                namespaces: decodeNamespaces(s, r),
                                parallelism: r.int(s, "parallelism") ?? PlanDefaults.parallelism,
                                timeouts: timeouts)
    }

    static func decodeNamespaces(_ s: Fields, _ r: NodeReader) -> [ClusterPlan.NamespacePolicy] {
        guard let list = r.sequenceField(s, "namespaces") else { return [] }
        var out: [ClusterPlan.NamespacePolicy] = []
        for (i, node) in list.items.enumerated() {
            let p = "\(list.path)[\(i)]"
            guard let n = r.mapping(node, p, schema: "spec.namespaces[]") else {
                out.append(ClusterPlan.NamespacePolicy(name: ""))
                continue
            }
            var policy = ClusterPlan.NamespacePolicy(name: r.string(n, "name", required: true) ?? "",
                                                     defaultDeny: r.bool(n, "defaultDeny") ?? false)
            // `limitRange: true` takes the defaults; a mapping overrides some of them.
            if let v = n.values["limitRange"], !NodeReader.isNull(v) {
                if case .scalar = v, NodeReader.tag(v) == Tag.Name.bool.rawValue {
                    if v.bool == true { policy.limitRange = PlanDefaults.limitDefaults }
                } else if let m = r.mappingField(n, "limitRange") {
                    var d = PlanDefaults.limitDefaults
                    if let q = r.mappingField(m, "defaultRequest", schema: "spec.namespaces[].limitRange.*") {
                        d.requestCPU = r.string(q, "cpu") ?? d.requestCPU
                        d.requestMemory = r.string(q, "memory") ?? d.requestMemory
                    }
                    if let q = r.mappingField(m, "default", schema: "spec.namespaces[].limitRange.*") {
                        d.limitCPU = r.string(q, "cpu") ?? d.limitCPU
                        d.limitMemory = r.string(q, "memory") ?? d.limitMemory
                    }
                    policy.limitRange = d
                }
            }
            if let access = r.sequenceField(n, "access") {
                for (j, an) in access.items.enumerated() {
                    guard let a = r.mapping(an, "\(access.path)[\(j)]", schema: "spec.namespaces[].access[]") else {
                        continue
                    }
                    policy.access.append(ClusterPlan.Access(role: r.enumValue(a, "role", required: true) ?? .view,
                                                            users: r.stringList(a, "users") ?? [],
                                                            groups: r.stringList(a, "groups") ?? []))
                }
            }
            out.append(policy)
        }
        return out
    }
}

/// A mapping node read with its field path: its values by key.
struct Fields {
    let path: String
    let node: Node
    let values: [String: Node]
}

struct Items {
    let path: String
    let items: [Node]
}

/// Walks YAML nodes, recording diagnostics (with line and column) and the location of every field.
final class NodeReader {
    var diagnostics: [Diagnostic] = []
    /// Field path → where its value starts.
    var locations: [String: SourceLocation] = [:]
    /// Paths already reported, so validation does not report them twice.
    var reported: Set<String> = []
    /// Unknown fields seen; past `PlanLoader.reportLimit` they are only counted in `omittedErrors` (no
    /// did-you-mean, no message): a file of 600,000 unknown keys is rejected in a second, not ten.
    var unknownFields = 0
    var omittedErrors = 0

    static func child(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    static func location(_ node: Node?) -> SourceLocation? {
        node?.mark.map { SourceLocation(line: $0.line, column: $0.column) }
    }

    func error(_ path: String, _ node: Node?, _ message: String, expected: String? = nil) {
        add(.error, path, node, message, expected)
    }

    func warning(_ path: String, _ node: Node?, _ message: String, expected: String? = nil) {
        add(.warning, path, node, message, expected)
    }

    private func add(_ s: Diagnostic.Severity, _ path: String, _ node: Node?, _ message: String, _ expected: String?) {
        let loc = NodeReader.location(node) ?? locations[path]
        diagnostics.append(Diagnostic(severity: s, path: path, line: loc?.line, column: loc?.column,
                                      message: message, expected: expected))
        if s == .error { reported.insert(path) }
    }

    static func tag(_ node: Node) -> String { node.tag.description }

    /// A plain `~`, `null` or empty scalar (checked directly: resolving tags is slow on big plans).
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.style == .plain else { return false }
        switch s.string {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s):
            if isNull(node) { return "nothing" }
            let text = s.string.count > 40 ? String(s.string.prefix(40)) + "…" : s.string
            return "\"\(text)\""
        }
    }

    static func json(_ node: Node) -> JSONValue {
        switch node {
        case .mapping(let m):
            var o: [String: JSONValue] = [:]
            for (k, v) in m { o[k.string ?? "\(k)"] = json(v) }
            return .object(o)
        case .sequence(let s):
            return .array(s.map(json))
        case .scalar(let s):
            switch NodeReader.tag(node) {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSONValue.bool) ?? .string(s.string)
            case Tag.Name.int.rawValue: return node.int.map(JSONValue.int) ?? .string(s.string)
            case Tag.Name.float.rawValue: return node.float.map(JSONValue.double) ?? .string(s.string)
            default: return .string(s.string)
            }
        }
    }

    /// `node` as a mapping whose keys are checked against `schema` (unknown keys get a suggestion).
    func mapping(_ node: Node, _ path: String, schema: String) -> Fields? {
        guard case .mapping(let m) = node else {
            error(path, node, "expected a mapping, found \(NodeReader.describe(node))",
                  expected: (PlanLoader.schema[schema] ?? []).isEmpty ? nil
                      : "fields " + (PlanLoader.schema[schema] ?? []).joined(separator: ", "))
            return nil
        }
        let allowed = PlanLoader.schema[schema] ?? []
        var values: [String: Node] = [:]
        for (k, v) in m {
            guard case .scalar(let ks) = k else {
                error(path, k, "keys must be plain names, found \(NodeReader.describe(k))")
                continue
            }
            let key = ks.string
            let p = NodeReader.child(path, key)
            if values[key] != nil {
                error(p, k, "\"\(key)\" is given twice")
                continue
            }
            if !allowed.isEmpty && !allowed.contains(key) {
                unknownFields += 1
                if unknownFields > PlanLoader.reportLimit {
                    omittedErrors += 1
                    continue
                }
                let hint = didYouMean(key, among: allowed).map { "; did you mean \"\($0)\"?" } ?? ""
                let where_ = path.isEmpty ? "at the top level" : "in \(path)"
                error(p, k, "unknown field \"\(key)\" \(where_)\(hint)",
                      expected: "one of " + allowed.joined(separator: ", "))
                continue
            }
            values[key] = v
            if let loc = NodeReader.location(v) { locations[p] = loc }
        }
        if let loc = NodeReader.location(node), locations[path] == nil { locations[path] = loc }
        return Fields(path: path, node: node, values: values)
    }

    /// The value of `key`, or nil when absent or null (reporting it when required).
    func value(_ f: Fields, _ key: String, required: Bool, what: String) -> Node? {
        let p = NodeReader.child(f.path, key)
        guard let v = f.values[key], !NodeReader.isNull(v) else {
            if required {
                let present = f.values[key] != nil
                error(p, f.values[key] ?? f.node,
                      present ? "must not be empty" : "missing required field \"\(key)\"\(f.path.isEmpty ? "" : " in \(f.path)")",
                      expected: what)
            }
            return nil
        }
        return v
    }

    func mappingField(_ f: Fields, _ key: String, required: Bool = false, schema: String? = nil) -> Fields? {
        let p = NodeReader.child(f.path, key)
        let pattern = schema ?? p.replacingOccurrences(of: #"\[\d+\]"#, with: "[]", options: .regularExpression)
        guard let v = value(f, key, required: required, what: "a mapping") else { return nil }
        return mapping(v, p, schema: pattern)
    }

    func sequenceField(_ f: Fields, _ key: String, required: Bool = false) -> Items? {
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: required, what: "a list") else { return nil }
        guard case .sequence(let s) = v else {
            error(p, v, "expected a list, found \(NodeReader.describe(v))")
            return nil
        }
        for (i, item) in s.enumerated() {
            if let loc = NodeReader.location(item) { locations["\(p)[\(i)]"] = loc }
        }
        return Items(path: p, items: Array(s))
    }

    /// Any scalar reads as its text (so `version: 1.34` is checked as a version, not refused as a number).
    func string(_ f: Fields, _ key: String, required: Bool = false) -> String? {
        guard let v = value(f, key, required: required, what: "a string") else { return nil }
        return scalarText(v, NodeReader.child(f.path, key))
    }

    private func scalarText(_ v: Node, _ path: String) -> String? {
        guard case .scalar(let s) = v else {
            error(path, v, "expected a string, found \(NodeReader.describe(v))")
            return nil
        }
        return s.string
    }

    func int(_ f: Fields, _ key: String, required: Bool = false) -> Int? {
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: required, what: "an integer") else { return nil }
        guard case .scalar = v, NodeReader.tag(v) == Tag.Name.int.rawValue, let i = v.int else {
            error(p, v, "expected an integer, found \(NodeReader.describe(v))")
            return nil
        }
        return i
    }

    func bool(_ f: Fields, _ key: String, required: Bool = false) -> Bool? {
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: required, what: "true or false") else { return nil }
        guard case .scalar = v, NodeReader.tag(v) == Tag.Name.bool.rawValue, let b = v.bool else {
            error(p, v, "expected true or false, found \(NodeReader.describe(v))")
            return nil
        }
        return b
    }

    func enumValue<E: RawRepresentable & CaseIterable>(_ f: Fields, _ key: String, required: Bool = false) -> E?
        where E.RawValue == String
    {
        let options = E.allCases.map(\.rawValue)
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: required, what: "one of " + options.joined(separator: ", ")),
              let text = scalarText(v, p) else { return nil }
        if let e = E(rawValue: text) { return e }
        let hint = didYouMean(text, among: options).map { "; did you mean \"\($0)\"?" } ?? ""
        error(p, v, "\"\(text)\" is not a valid \(key)\(hint)", expected: "one of " + options.joined(separator: ", "))
        return nil
    }

    func stringList(_ f: Fields, _ key: String) -> [String]? {
        guard let items = sequenceField(f, key) else { return nil }
        var out: [String] = []
        for (i, n) in items.items.enumerated() {
            if let s = scalarText(n, "\(items.path)[\(i)]") { out.append(s) }
        }
        return out
    }

    func stringMap(_ f: Fields, _ key: String) -> [String: String]? {
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: false, what: "a mapping") else { return nil }
        guard case .mapping(let m) = v else {
            error(p, v, "expected a mapping of strings, found \(NodeReader.describe(v))")
            return nil
        }
        var out: [String: String] = [:]
        for (k, val) in m {
            guard case .scalar(let ks) = k else {
                error(p, k, "keys must be strings, found \(NodeReader.describe(k))")
                continue
            }
            let cp = "\(p).\(ks.string)"
            if let loc = NodeReader.location(k) { locations[cp] = loc }
            if NodeReader.isNull(val) { out[ks.string] = ""; continue }
            if let s = scalarText(val, cp) { out[ks.string] = s }
        }
        return out
    }
}
