import Foundation
import Yams

/// A Kubernetes object bootstrap applies with server-side apply: from the plan's manifest files, or
/// generated from the plan (security defaults, add-on extras).
public struct KubeObject: Sendable, Hashable {
    public var apiVersion: String
    public var kind: String
    public var namespace: String
    public var name: String
    /// Where it comes from: a manifest path as the plan gives it, or the plan field that generated it.
    public var source: String
    public var body: JSONValue

    /// `Kind/namespace/name` (`Kind/name` for cluster-scoped objects): the key in the state.
    public var key: String { namespace.isEmpty ? "\(kind)/\(name)" : "\(kind)/\(namespace)/\(name)" }
    public var hash: String { Hashing.sha256(body.canonicalJSON) }

    /// Kinds without a namespace (the built-in ones plans use).
    public static let clusterScoped: Set<String> = [
        "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
        "StorageClass", "PriorityClass", "IngressClass", "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration", "APIService", "RuntimeClass", "Node", "CSIDriver",
    ]

    public init(body: JSONValue, source: String) {
        self.body = body
        self.source = source
        if case .string(let v)? = body["apiVersion"] { apiVersion = v } else { apiVersion = "" }
        if case .string(let k)? = body["kind"] { kind = k } else { kind = "" }
        if case .string(let n)? = body["metadata"]?["name"] { name = n } else { name = "" }
        if KubeObject.clusterScoped.contains(kind) {
            namespace = ""
        } else if case .string(let ns)? = body["metadata"]?["namespace"], !ns.isEmpty {
            namespace = ns
        } else {
            namespace = "default"
            // Written out so that what is applied says where it goes.
            if case .object(var md)? = body["metadata"], case .object(var b) = body {
                md["namespace"] = .string("default")
                b["metadata"] = .object(md)
                self.body = .object(b)
            }
        }
    }
}

/// A problem in a manifest file: the file, the document (from 1) and, when known, the line.
public struct ManifestProblem: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var document: Int?
    public var line: Int?
    public var message: String
    public var description: String {
        var at = file
        if let line { at += ":\(line)" }
        if let document { at += " (document \(document))" }
        return "\(at): \(message)"
    }
}

public enum Manifests {
    /// The objects of one manifest file (multi-document YAML or JSON). Empty documents are skipped;
    /// `kind: List` documents are expanded.
    public static func parse(_ text: String, file: String) throws(ManifestProblem) -> [KubeObject] {
        var nodes: [Node] = []
        do {
            // Document by document, so that an error in any of them is reported (a lazy sequence would
            // just stop at it).
            let parser = try Parser(yaml: text)
            while let node = try parser.nextRoot() { nodes.append(node) }
        } catch let e as YamlError {
            var line: Int?
            switch e {
            case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): line = mark.line
            default: break
            }
            throw ManifestProblem(file: file, line: line, message: "not valid YAML: \(e)")
        } catch {
            throw ManifestProblem(file: file, message: "not valid YAML: \(error)")
        }
        var out: [KubeObject] = []
        for (i, node) in nodes.enumerated() {
            let value = NodeReader.json(node)
            if value == .null { continue }
            let line = node.mark.map { $0.line }
            var items = [value]
            if case .string("List")? = value["kind"], case .array(let list)? = value["items"] { items = list }
            for item in items {
                guard case .object = item else {
                    throw ManifestProblem(file: file, document: i + 1, line: line,
                                          message: "expected a Kubernetes object (a mapping)")
                }
                let o = KubeObject(body: item, source: file)
                for (field, v) in [("apiVersion", o.apiVersion), ("kind", o.kind), ("metadata.name", o.name)] where v.isEmpty {
                    throw ManifestProblem(file: file, document: i + 1, line: line,
                                          message: "missing \(field)")
                }
                out.append(o)
            }
        }
        return out
    }

    /// Everything bootstrap applies for the plan: the generated objects, then the manifest files' objects
    /// (`files` maps each manifest path as the plan gives it to its text). An object a file declares wins
    /// over a generated one with the same key (a manifest may create the namespace a policy is for); two
    /// files declaring the same object is an error.
    public static func desired(for plan: ClusterPlan, files: [String: String]) throws(ManifestProblem) -> [KubeObject] {
        var byKey: [String: KubeObject] = [:]
        var order: [String] = []
        for o in GeneratedObjects.objects(for: plan) where byKey[o.key] == nil {
            byKey[o.key] = o
            order.append(o.key)
        }
        var fromFiles: [String: String] = [:]
        var read: Set<String> = []
        // A file listed twice is read once (validation warns about it; its objects are not a clash with themselves).
        for file in plan.spec.manifests where read.insert(file).inserted {
            guard let text = files[file] else { continue }
            for o in try parse(text, file: file) {
                if let other = fromFiles[o.key] {
                    throw ManifestProblem(file: file, message: "\(o.key) is also declared in \(other)")
                }
                fromFiles[o.key] = file
                if byKey[o.key] == nil { order.append(o.key) }
                byKey[o.key] = o
            }
        }
        return order.map { byKey[$0]! }
    }

    /// The order objects are applied in: namespaces and cluster-wide definitions first, so that what lives in
    /// them can follow in the same apply.
    public static func applyOrder(_ objects: [KubeObject]) -> [KubeObject] {
        func rank(_ o: KubeObject) -> Int {
            switch o.kind {
            case "Namespace": return 0
            case "CustomResourceDefinition": return 1
            case "ServiceAccount", "ClusterRole", "Role": return 2
            default: return 3
            }
        }
        return objects.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
    }

    /// One multi-document YAML text of `objects`, for `kubectl apply -f`.
    public static func document(_ objects: [KubeObject]) -> String {
        objects.map { YAMLText.render($0.body) }.joined(separator: "---\n")
    }
}

/// Objects generated from the plan rather than read from files.
public enum GeneratedObjects {
    public static func objects(for plan: ClusterPlan) -> [KubeObject] {
        var out: [KubeObject] = []
        for (i, ns) in plan.spec.namespaces.enumerated() {
            out.append(contentsOf: security(ns, source: "spec.namespaces[\(i)]"))
        }
        let a = plan.spec.addons
        if a.tracing.enabled { out.append(jaegerUI(release: Releases.tracing(a.tracing)[0])) }
        if a.dashboard.enabled {
            out.append(contentsOf: dashboardViewer(namespace: "kubernetes-dashboard"))
        }
        return out
    }

    static func object(_ source: String, _ body: [String: JSONValue]) -> KubeObject {
        KubeObject(body: .object(body), source: source)
    }

    static func metadata(_ name: String, namespace: String? = nil) -> JSONValue {
        var m: [String: JSONValue] = ["name": .string(name),
                                      "labels": .object(["app.kubernetes.io/managed-by": .string("bootstrap")])]
        if let namespace { m["namespace"] = .string(namespace) }
        return .object(m)
    }

    /// The namespace itself, then what the policy asks for.
    static func security(_ p: ClusterPlan.NamespacePolicy, source: String) -> [KubeObject] {
        var out = [object(source, ["apiVersion": "v1", "kind": "Namespace", "metadata": metadata(p.name)])]
        if p.defaultDeny {
            // Nothing in or out, except DNS lookups to the cluster's DNS in kube-system.
            let dnsPorts: JSONValue = .array([.object(["protocol": "UDP", "port": .int(53)]),
                                              .object(["protocol": "TCP", "port": .int(53)])])
            out.append(object(source, [
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": metadata("default-deny", namespace: p.name),
                "spec": .object([
                    "podSelector": .object([:]),
                    "policyTypes": .array(["Ingress", "Egress"]),
                    "egress": .array([.object([
                        "to": .array([.object([
                            "namespaceSelector": .object(["matchLabels": .object([
                                "kubernetes.io/metadata.name": "kube-system"])]),
                            "podSelector": .object(["matchLabels": .object(["k8s-app": "kube-dns"])]),
                        ])]),
                        "ports": dnsPorts,
                    ])]),
                ]),
            ]))
        }
        if let l = p.limitRange {
            out.append(object(source, [
                "apiVersion": "v1", "kind": "LimitRange",
                "metadata": metadata("defaults", namespace: p.name),
                "spec": .object(["limits": .array([.object([
                    "type": "Container",
                    "defaultRequest": .object(["cpu": .string(l.requestCPU), "memory": .string(l.requestMemory)]),
                    "default": .object(["cpu": .string(l.limitCPU), "memory": .string(l.limitMemory)]),
                ])])]),
            ]))
        }
        for a in p.access {
            var subjects: [JSONValue] = []
            for u in a.users {
                subjects.append(.object(["kind": "User", "name": .string(u), "apiGroup": "rbac.authorization.k8s.io"]))
            }
            for g in a.groups {
                subjects.append(.object(["kind": "Group", "name": .string(g), "apiGroup": "rbac.authorization.k8s.io"]))
            }
            out.append(object(source, [
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": metadata("bootstrap-\(a.role.rawValue)", namespace: p.name),
                "roleRef": .object(["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                    "name": .string(a.role.rawValue)]),
                "subjects": .array(subjects),
            ]))
        }
        return out
    }

    /// A NodePort Service in front of the Jaeger all-in-one pod's query UI.
    static func jaegerUI(release r: HelmRelease) -> KubeObject {
        object("spec.addons.tracing", [
            "apiVersion": "v1", "kind": "Service",
            "metadata": metadata("jaeger-ui", namespace: r.namespace),
            "spec": .object([
                "type": "NodePort",
                "selector": .object(["app.kubernetes.io/instance": .string(r.name),
                                     "app.kubernetes.io/component": "all-in-one"]),
                "ports": .array([.object(["name": "http-query", "port": .int(16686), "targetPort": .int(16686),
                                          "nodePort": .int(r.nodePorts["jaeger"] ?? 30686)])]),
            ]),
        ])
    }

    /// The dashboard's default sign-in: a service account bound to the read-only `view` role.
    static func dashboardViewer(namespace: String) -> [KubeObject] {
        [
            object("spec.addons.dashboard", ["apiVersion": "v1", "kind": "ServiceAccount",
                                             "metadata": metadata("dashboard-viewer", namespace: namespace)]),
            object("spec.addons.dashboard", [
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": metadata("dashboard-viewer"),
                "roleRef": .object(["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"]),
                "subjects": .array([.object(["kind": "ServiceAccount", "name": "dashboard-viewer",
                                             "namespace": .string(namespace)])]),
            ]),
        ]
    }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

/// YAML text of a JSON value (block style, keys sorted), for files uploaded to hosts.
public enum YAMLText {
    public static func render(_ value: JSONValue) -> String {
        (try? Yams.serialize(node: node(value), sortKeys: true)) ?? value.canonicalJSON + "\n"
    }

    static func node(_ v: JSONValue) -> Node {
        switch v {
        case .null: return Node("null", Tag(.null))
        case .bool(let b): return Node(b ? "true" : "false", Tag(.bool))
        case .int(let i): return Node(String(i), Tag(.int))
        case .double(let d): return Node(String(d), Tag(.float))
        case .string(let s): return string(s)
        case .array(let a): return Node(a.map(node), Tag(.seq))
        case .object(let o): return Node(o.sorted { $0.key < $1.key }.map { (string($0.key), node($0.value)) }, Tag(.map))
        }
    }

    /// A string that reads back as that string: quoted where the plain scalar would be another type (`""` is
    /// null, `"1"` an int, `"true"` a bool), so a CPU limit of "1" or an empty `kubernetesProvider` keeps its type.
    static func string(_ s: String) -> Node {
        if s.contains("\n") { return Node(s, Tag(.str), .literal) }
        return Node(s, Tag(.str), Resolver.default.resolveTag(of: Node(s)) == .str ? .any : .doubleQuoted)
    }
}
