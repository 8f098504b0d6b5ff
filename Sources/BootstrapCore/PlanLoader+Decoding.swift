import Foundation
import Yams

extension PlanLoader {
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

        let provider = decodeProvider(s, r)
        var hosts: [ClusterPlan.Host] = []
        if let list = r.sequenceField(s, "hosts", required: provider?.ec2 == nil) {
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
                host.privateAddress = r.string(h, "privateAddress")
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
                let schema = PlanLoader.schema["spec.addons.\(key)"] != nil ? "spec.addons.\(key)" : "spec.addons.*"
                guard let m = r.mappingField(a, key, schema: schema) else {
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
                if schema == "spec.addons.logging" {
                    addon.storageClass = r.string(m, "storageClass")
                    addon.storageSize = r.string(m, "storageSize")
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
        var upgrade = ClusterPlan.UpgradeSettings()
        if let u = r.mappingField(s, "upgrade") {
            if let v = r.string(u, "maxUnavailable") { upgrade.maxUnavailable = v }
            if let v = r.int(u, "drainTimeout") { upgrade.drainTimeout = v }
        }

        var certificates = ClusterPlan.CertificatePolicy()
        if let c = r.mappingField(s, "certificates"), let v = r.string(c, "renewBefore") {
            certificates.renewBefore = v
        }

        return ClusterPlan.Spec(kubernetes: k8s, network: net, ssh: ssh, hosts: hosts, containerRuntime: runtime,
                                addons: addons, manifests: r.stringList(s, "manifests") ?? [],
                                namespaces: decodeNamespaces(s, r),
                                parallelism: r.int(s, "parallelism") ?? PlanDefaults.parallelism,
                                timeouts: timeouts, certificates: certificates, upgrade: upgrade,
                                provider: provider)
    }

    /// `spec.provider.ec2`: region, endpoint, host selectors, which address to SSH to, security groups.
    static func decodeProvider(_ s: Fields, _ r: NodeReader) -> ClusterPlan.Provider? {
        guard let p = r.mappingField(s, "provider") else { return nil }
        guard let e = r.mappingField(p, "ec2") else { return ClusterPlan.Provider() }
        var ec2 = ClusterPlan.EC2(region: r.string(e, "region", required: true) ?? "", hosts: [])
        ec2.endpoint = r.string(e, "endpoint")
        ec2.sshAddress = r.enumValue(e, "sshAddress") ?? .private
        ec2.manageSecurityGroups = r.bool(e, "manageSecurityGroups") ?? false
        ec2.operatorCidrs = r.stringList(e, "operatorCidrs") ?? []
        if let list = r.sequenceField(e, "hosts", required: true) {
            for (i, node) in list.items.enumerated() {
                guard let h = r.mapping(node, "\(list.path)[\(i)]", schema: "spec.provider.ec2.hosts[]") else {
                    ec2.hosts.append(ClusterPlan.HostSelector(role: .worker))
                    continue
                }
                ec2.hosts.append(ClusterPlan.HostSelector(role: r.enumValue(h, "role", required: true) ?? .worker,
                                                          tags: r.stringMap(h, "tags") ?? [:],
                                                          instanceIds: r.stringList(h, "instanceIds") ?? []))
            }
        }
        return ClusterPlan.Provider(ec2: ec2)
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
