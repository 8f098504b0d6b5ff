import Foundation
import Yams

/// Turns a `ChangeSet` into what `bootstrap plan` prints (text or JSON), and a `ClusterPlan` back into YAML.
public enum PlanRenderer {
    public struct Style: Sendable {
        public var color: Bool
        public init(color: Bool) { self.color = color }

        func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        func bold(_ s: String) -> String { paint(s, "1") }

        func action(_ a: Change.Action) -> String {
            switch a {
            case .create: return paint(a.symbol, "32")
            case .update: return paint(a.symbol, "33")
            case .delete: return paint(a.symbol, "31")
            case .replace: return paint(a.symbol, "35")
            }
        }
    }

    /// Terraform-style text, ending with a newline.
    public static func text(_ set: ChangeSet, plan: ClusterPlan, state: ClusterState?, color: Bool = false) -> String {
        let st = Style(color: color)
        var out = ""
        let k = plan.spec.kubernetes
        let stateText = state.map { "state serial \($0.serial)" } ?? "no state yet"
        let net = plan.spec.network
        out += st.bold("Cluster \"\(plan.name)\"") + ": Kubernetes \(k.version), \(net.cni.rawValue) "
            + "(pods \(net.podSubnet), services \(net.serviceSubnet)), "
            + "\(plan.controlPlanes.count) control plane\(plan.controlPlanes.count == 1 ? "" : "s"), "
            + "\(plan.workers.count) worker\(plan.workers.count == 1 ? "" : "s") (\(stateText))\n\n"

        if set.changes.isEmpty && set.blocking.isEmpty {
            out += st.paint("No changes.", "32;1") + " The cluster matches the plan.\n"
            return out
        }
        if !set.changes.isEmpty {
            let used = Set(set.changes.map(\.action))
            let legend: [(Change.Action, String)] = [(.create, "create"), (.update, "update in place"),
                                                     (.delete, "destroy"), (.replace, "destroy and re-create")]
            out += "bootstrap will perform the following actions:\n"
            for (a, words) in legend where used.contains(a) {
                out += "  \(st.action(a)) \(words)\n"
            }
            out += "\n"
        }
        for (i, c) in set.changes.enumerated() {
            if i > 0 { out += "\n" }
            var head = "  \(st.action(c.action)) \(c.subject.rawValue) \(st.bold(c.name))"
            var facts: [String] = []
            switch c.subject {
            case .host:
                if let a = c.address { facts.append(a) }
                if let r = c.role { facts.append(r.rawValue) }
            case .cluster:
                if let a = c.address { facts.append("endpoint \(a)") }
                if let v = c.version { facts.append("Kubernetes \(v)") }
            case .addon:
                facts.append("version \(c.version ?? "default")")
            case .manifest:
                break
            }
            if !facts.isEmpty { head += "  (" + facts.joined(separator: ", ") + ")" }
            out += head + "\n"
            for r in c.reasons { out += "      reason: \(r)\n" }
            if !c.changedPaths.isEmpty { out += "      changed: \(c.changedPaths.joined(separator: ", "))\n" }
            if !c.steps.isEmpty { out += "      steps: \(c.steps.joined(separator: ", "))\n" }
            if !c.supported { out += "      " + st.paint("note: apply cannot do this yet", "33") + "\n" }
        }
        let s = set.summary
        if !set.changes.isEmpty { out += "\n" }
        out += st.bold("Plan:") + " \(s.add) to add, \(s.change) to change, \(s.destroy) to destroy.\n"
        if !set.blocking.isEmpty {
            out += "\n" + st.paint("Error:", "31;1") + " this plan cannot be applied:\n"
            for b in set.blocking { out += "  ✗ \(b.path): \(b.reason)\n" }
        }
        return out
    }

    /// The machine-readable plan (`bootstrap plan --json`).
    public struct Document: Sendable, Hashable, Codable {
        public static let currentFormatVersion = 1
        public var formatVersion: Int
        public var cluster: String
        public var stateSerial: Int?
        public var stateLineage: String?
        public var changes: [Change]
        public var blocking: [Blocker]
        public var summary: ChangeSummary
        /// With `plan --refresh`: what the hosts showed (absent otherwise).
        public var refresh: RefreshReport?
        /// What apply will run, in order, each with the actions it waits for (absent when not given).
        public var actions: [Action]?

        public struct Action: Sendable, Hashable, Codable {
            /// `HOST/STEP`, `cluster/STEP`, `release/KEY`, `uninstall/KEY`, `cluster/manifests`, `remove/HOST`,
            /// `cluster/ready`.
            public var id: String
            public var after: [String]
        }
    }

    public static func document(_ set: ChangeSet, state: ClusterState?, refresh: RefreshReport? = nil,
                                actions: [PlannedAction]? = nil) -> Document {
        Document(formatVersion: Document.currentFormatVersion, cluster: set.cluster, stateSerial: state?.serial,
                 stateLineage: state?.lineage, changes: set.changes, blocking: set.blocking, summary: set.summary,
                 refresh: refresh,
                 actions: actions?.map { Document.Action(id: $0.id.description, after: $0.after.map(\.description)) })
    }

    public static func document(_ plan: ApplyPlan, state: ClusterState?, refresh: RefreshReport? = nil) -> Document {
        document(plan.changes, state: state, refresh: refresh, actions: plan.actions)
    }

    /// Pretty JSON with sorted keys, ending with a newline.
    public static func json<T: Encodable>(_ value: T) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        enc.dateEncodingStrategy = .iso8601
        guard let data = try? enc.encode(value) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    // MARK: the resolved plan as YAML (validate --show-defaults)

    public static func yaml(_ plan: ClusterPlan) -> String {
        let s = plan.spec
        // A string a YAML reader would take for a bool, number or null is written quoted.
        func str(_ v: String) -> Node {
            let plain = Node(v)
            return plain.tag.description == Tag.Name.str.rawValue ? plain : Node(v, Tag(.str), .doubleQuoted)
        }
        func int(_ v: Int) -> Node { Node(String(v), Tag(.int)) }
        func bool(_ v: Bool) -> Node { Node(v ? "true" : "false", Tag(.bool)) }
        func map(_ pairs: [(String, Node?)]) -> Node {
            .mapping(Node.Mapping(pairs.compactMap { k, v in v.map { (Node(k), $0) } }))
        }
        func list(_ items: [Node]) -> Node { .sequence(Node.Sequence(items)) }
        func json(_ v: JSONValue) -> Node {
            switch v {
            case .null: return Node("null", Tag(.null))
            case .bool(let b): return bool(b)
            case .int(let i): return int(i)
            case .double(let d): return Node(String(d), Tag(.float))
            case .string(let t): return str(t)
            case .array(let a): return list(a.map(json))
            case .object(let o): return map(o.keys.sorted().map { ($0, json(o[$0]!)) })
            }
        }
        let k = s.kubernetes
        let n = s.network
        let ssh = s.ssh
        let root = map([
            ("apiVersion", str(plan.apiVersion)),
            ("kind", str(plan.kind)),
            ("metadata", map([("name", str(plan.name))])),
            ("spec", map([
                ("kubernetes", map([
                    ("version", str(k.version)),
                    ("controlPlaneEndpoint", k.controlPlaneEndpoint.map(str)),
                    ("certSANs", list(k.certSANs.map(str))),
                ])),
                ("network", map([
                    ("cni", str(n.cni.rawValue)),
                    ("podSubnet", str(n.podSubnet)),
                    ("serviceSubnet", str(n.serviceSubnet)),
                    ("dnsDomain", str(n.dnsDomain)),
                    ("calico", n.cni == .calico ? map([("encapsulation", str(n.calicoEncapsulation.rawValue))]) : nil),
                ])),
                ("ssh", map([
                    ("user", str(ssh.user)),
                    ("keyPath", str(ssh.keyPath)),
                    ("knownHosts", str(ssh.knownHosts)),
                    ("port", int(ssh.port)),
                    ("hostKeyPolicy", str(ssh.hostKeyPolicy.rawValue)),
                    ("connectTimeout", int(ssh.connectTimeout)),
                    ("bastion", ssh.bastion.map { b in
                        map([("address", str(b.address)), ("port", int(b.port)), ("user", str(b.user)),
                             ("keyPath", str(b.keyPath))])
                    }),
                ])),
                ("hosts", list(s.hosts.map { h in
                    let eff = plan.ssh(for: h)
                    return map([
                        ("name", str(h.name)),
                        ("address", str(h.address)),
                        ("role", str(h.role.rawValue)),
                        ("port", int(eff.port)),
                        ("user", str(eff.user)),
                        ("keyPath", str(eff.keyPath)),
                        ("labels", map(h.labels.keys.sorted().map { ($0, str(h.labels[$0]!)) })),
                        ("taints", list(h.taints.map { t in
                            map([("key", str(t.key)), ("value", t.value.map(str)), ("effect", str(t.effect.rawValue))])
                        })),
                    ])
                })),
                ("containerRuntime", map([
                    ("containerd", map([("version", s.containerRuntime.containerdVersion.map(str))])),
                ])),
                ("addons", map(s.addons.all.map { name, a in
                    (name, map([("enabled", bool(a.enabled)), ("version", a.version.map(str)),
                                ("values", json(a.values)),
                                ("nodePorts", a.nodePorts.isEmpty ? nil
                                    : map(a.nodePorts.keys.sorted().map { ($0, int(a.nodePorts[$0]!)) }))]))
                })),
                ("manifests", list(s.manifests.map(str))),
                ("namespaces", list(s.namespaces.map { n in
                    map([("name", str(n.name)), ("defaultDeny", bool(n.defaultDeny)),
                         ("limitRange", n.limitRange.map { l in map([
                             ("defaultRequest", map([("cpu", str(l.requestCPU)), ("memory", str(l.requestMemory))])),
                             ("default", map([("cpu", str(l.limitCPU)), ("memory", str(l.limitMemory))])),
                         ]) }),
                         ("access", list(n.access.map { a in
                             map([("role", str(a.role.rawValue)), ("users", list(a.users.map(str))),
                                  ("groups", list(a.groups.map(str)))])
                         }))])
                })),
                ("parallelism", int(s.parallelism)),
                ("timeouts", map(s.timeouts.fields.map { f -> (String, Node?) in (f.name, int(f.seconds)) })),
            ])),
        ])
        return (try? Yams.serialize(node: root, sortKeys: false)) ?? ""
    }
}
