import Foundation
import Yams

/// Pretty JSON with sorted keys and ISO 8601 dates: how documents (`plan --json`, `show --json`, saved
/// plans) are written.
public enum PrettyJSON {
    /// Pretty JSON with sorted keys, ending with a newline.
    public static func text<T: Encodable>(_ value: T) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        enc.dateEncodingStrategy = .iso8601
        guard let data = try? enc.encode(value) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// A `ClusterPlan` back as YAML: the resolved plan `validate --show-defaults` prints.
public enum PlanYAML {
    public static func text(_ plan: ClusterPlan) -> String {
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
                        ("privateAddress", h.privateAddress.map(str)),
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
                                    : map(a.nodePorts.keys.sorted().map { ($0, int(a.nodePorts[$0]!)) })),
                                ("storageClass", a.storageClass.map(str)), ("storageSize", a.storageSize.map(str))]))
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
                ("certificates", map([("renewBefore", str(s.certificates.renewBefore))])),
                ("upgrade", map([("maxUnavailable", str(s.upgrade.maxUnavailable)),
                                 ("drainTimeout", int(s.upgrade.drainTimeout))])),
                ("provider", s.provider.map { p in map([("ec2", p.ec2.map { e in map([
                    ("region", str(e.region)), ("endpoint", e.endpoint.map(str)),
                    ("hosts", list(e.hosts.map { h in map([
                        ("role", str(h.role.rawValue)),
                        ("tags", h.tags.isEmpty ? nil : map(h.tags.keys.sorted().map { ($0, str(h.tags[$0]!)) })),
                        ("instanceIds", h.instanceIds.isEmpty ? nil : list(h.instanceIds.map(str))),
                    ]) })),
                    ("sshAddress", str(e.sshAddress.rawValue)), ("manageSecurityGroups", bool(e.manageSecurityGroups)),
                    ("operatorCidrs", e.operatorCidrs.isEmpty ? nil : list(e.operatorCidrs.map(str))),
                ]) })]) }),
            ])),
        ])
        return (try? Yams.serialize(node: root, sortKeys: false)) ?? ""
    }
}
