/// The rules a decoded plan must satisfy beyond its shape: names, addresses, subnets, versions, the
/// control-plane layout, manifest files. Pure: file existence comes in as a function.
public enum Validation {
    /// Every problem in `plan`. `locations` maps field paths to where they are in the file; fields listed in
    /// `skip` were already reported by the decoder and are not checked again.
    public static func validate(_ plan: ClusterPlan, fileExists: (String) -> Bool,
                                locations: [String: SourceLocation] = [:], skip: Set<String> = []) -> [Diagnostic]
    {
        var v = Validator(locations: locations, skip: skip)
        v.run(plan, fileExists: fileExists)
        return v.diagnostics
    }

    /// Where a path in a plan resolves to on disk: absolute paths as they are, others against the plan's
    /// directory.
    public static func resolve(_ path: String, against base: String) -> String {
        if path.hasPrefix("/") { return path }
        if base.isEmpty || base == "." { return path }
        return base.hasSuffix("/") ? base + path : base + "/" + path
    }

    static let addressExpectation = "an IPv4 address like 10.0.1.10 or a DNS name"

    // Values that end up as words of a command line or in objects must look like what they are: quoting keeps
    // them harmless on the host, but a version with `;` or `$(…)` in it is a mistake to report, not to run.

    static let packageVersionExpectation = "a Debian or RPM package version like 1.7.28 or 1.7.28-0ubuntu1~22.04.1: "
        + "letters, digits and . + ~ : _ - (* as a wildcard), starting with a digit"

    /// A Debian or RPM version (epoch, upstream, revision), optionally with `*` wildcards as apt and dnf take.
    static func isPackageVersion(_ v: String) -> Bool {
        let u = Array(v.utf8)
        guard let first = u.first, (48...57).contains(first), u.count <= 128 else { return false }
        return u.allSatisfy { c in
            (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || Array("._+~:-*".utf8).contains(c)
        }
    }

    static let chartVersionExpectation = "a chart version (SemVer) like 65.1.1 or v0.26.1"

    /// A Helm chart version: SemVer 2, with an optional leading `v` (a pinned version, not a range).
    static func isChartVersion(_ v: String) -> Bool {
        var rest = Substring(v)
        if rest.hasPrefix("v") { rest = rest.dropFirst() }
        let (core, buildSplit) = split(rest, at: "+")
        let (numbers, pre) = split(core, at: "-")
        let parts = numbers.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
        else { return false }
        func identifiers(_ s: Substring?) -> Bool {
            guard let s else { return true }
            return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { id in
                !id.isEmpty && id.utf8.allSatisfy { c in
                    (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || c == 45
                }
            }
        }
        return identifiers(pre) && identifiers(buildSplit)
    }

    private static func split(_ s: Substring, at separator: Character) -> (Substring, Substring?) {
        guard let i = s.firstIndex(of: separator) else { return (s, nil) }
        return (s[..<i], s[s.index(after: i)...])
    }

    static let subjectExpectation = "a user or group name: letters, digits and @ . _ : + = , / # % ~ -, at most 256 "
        + "(like alice@example.com or system:authenticated)"

    /// A Kubernetes user or group name as plans give them: no spaces, quotes or shell metacharacters.
    static func isSubjectName(_ v: String) -> Bool {
        let u = Array(v.utf8)
        guard !u.isEmpty, u.count <= 256 else { return false }
        return u.allSatisfy { c in
            (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || Array("@._:+=,/#%~-".utf8).contains(c)
        }
    }
}

struct Validator {
    let locations: [String: SourceLocation]
    let skip: Set<String>
    var diagnostics: [Diagnostic] = []

    init(locations: [String: SourceLocation], skip: Set<String>) {
        self.locations = locations
        self.skip = skip
    }

    func location(_ path: String) -> SourceLocation? {
        var p = path
        while true {
            if let l = locations[p] { return l }
            guard !p.isEmpty else { return nil }
            if p.hasSuffix("]"), let i = p.lastIndex(of: "[") {
                p = String(p[..<i])
            } else if let i = p.lastIndex(of: ".") {
                p = String(p[..<i])
            } else {
                p = ""
            }
        }
    }

    /// True when `path` or a field containing it was already reported (missing, wrong type).
    func isSkipped(_ path: String) -> Bool {
        if skip.contains(path) { return true }
        var p = path
        while let i = p.lastIndex(where: { $0 == "." || $0 == "[" }) {
            p = String(p[..<i])
            if skip.contains(p) { return true }
        }
        return false
    }

    mutating func report(_ s: Diagnostic.Severity, _ path: String, _ message: String, expected: String? = nil) {
        if isSkipped(path) { return }
        let l = location(path)
        diagnostics.append(Diagnostic(severity: s, path: path, line: l?.line, column: l?.column, message: message,
                                      expected: expected))
    }

    mutating func error(_ path: String, _ message: String, expected: String? = nil) {
        report(.error, path, message, expected: expected)
    }

    mutating func warning(_ path: String, _ message: String, expected: String? = nil) {
        report(.warning, path, message, expected: expected)
    }

    mutating func port(_ p: Int?, _ path: String) {
        if let p, !(1...65535).contains(p) { error(path, "port \(p) is out of range", expected: "1–65535") }
    }

    mutating func address(_ a: String, _ path: String) -> NetworkAddress? {
        if skip.contains(path) { return nil }
        guard let addr = NetworkAddress(a) else {
            if a.contains(":") {
                error(path, "\"\(a)\" looks like an IPv6 address or HOST:PORT; hosts take an address only (the port goes in port:), and IPv6 is not supported yet",
                      expected: Validation.addressExpectation)
                return nil
            }
            error(path, "\"\(a)\" is not an IPv4 address or DNS name", expected: Validation.addressExpectation)
            return nil
        }
        return addr
    }

    mutating func run(_ plan: ClusterPlan, fileExists: (String) -> Bool) {
        let spec = plan.spec
        if !plan.name.isEmpty, !DNSName.isLabel(plan.name) {
            error("metadata.name", "\"\(plan.name)\" is not a DNS-1123 label",
                  expected: "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63")
        }
        checkVersion(spec.kubernetes.version)
        checkKubernetes(spec.kubernetes)
        let (pod, svc) = checkNetwork(spec.network, hostCount: spec.hosts.count)
        checkSSH(spec.ssh)
        checkHosts(plan, pod: pod, svc: svc)
        checkManifests(plan, fileExists: fileExists)
        if spec.parallelism < 1 {
            error("spec.parallelism", "must be at least 1, found \(spec.parallelism)", expected: "an integer ≥ 1")
        }
        let range = PlanDefaults.Timeout.range
        for (name, seconds) in spec.timeouts.fields where !range.contains(seconds) {
            error("spec.timeouts.\(name)", "must be between \(range.lowerBound) and \(range.upperBound) seconds, found \(seconds)",
                  expected: "a number of seconds from \(range.lowerBound) to \(range.upperBound)")
        }
        checkAddons(spec.addons)
        checkNamespaces(spec.namespaces, cni: spec.network.cni)
        if let v = spec.containerRuntime.containerdVersion {
            let path = "spec.containerRuntime.containerd.version"
            if v.trimmingCharacters(in: .whitespaces).isEmpty {
                error(path, "must not be empty", expected: Validation.packageVersionExpectation)
            } else if !Validation.isPackageVersion(v) {
                error(path, "\"\(v)\" is not a package version", expected: Validation.packageVersionExpectation)
            }
        }
    }

    mutating func checkVersion(_ version: String) {
        let path = "spec.kubernetes.version"
        guard !version.isEmpty else { return }
        switch KubernetesReleases.resolve(version) {
        case .success: break
        case .failure(.malformed):
            error(path, "\"\(version)\" is not a Kubernetes version",
                  expected: "MAJOR.MINOR.PATCH, one of \(KubernetesReleases.expectation)")
        case .failure(.notPinned(let m)):
            let p = (KubernetesReleases.supported[m] ?? []).sorted()
            error(path, "\"\(version)\" names a minor release; pin a patch release",
                  expected: "\(m).\(p.first ?? 0)–\(m).\(p.last ?? 0)")
        case .failure(.unsupportedMinor(let m)):
            error(path, "Kubernetes \(m) is not supported by this version of bootstrap",
                  expected: "one of \(KubernetesReleases.expectation)")
        case .failure(.unknownPatch(let m, let patch)):
            let p = (KubernetesReleases.supported[m] ?? []).sorted()
            error(path, "\(m).\(patch) is not a known release of Kubernetes \(m)",
                  expected: "\(m).\(p.first ?? 0)–\(m).\(p.last ?? 0)")
        }
    }

    mutating func checkKubernetes(_ k: ClusterPlan.Kubernetes) {
        if let e = k.controlPlaneEndpoint {
            let path = "spec.kubernetes.controlPlaneEndpoint"
            let host = e.split(separator: ":", omittingEmptySubsequences: false).dropLast().joined(separator: ":")
            let portText = e.split(separator: ":", omittingEmptySubsequences: false).last.map(String.init) ?? ""
            if NetworkAddress(host) == nil || Int(portText).map({ !(1...65535).contains($0) }) ?? true {
                error(path, "\"\(e)\" is not HOST:PORT", expected: "a DNS name or IPv4 address and a port, like k8s-api.example.com:6443")
            }
        }
        for (i, san) in k.certSANs.enumerated() {
            let bare = san.hasPrefix("*.") ? String(san.dropFirst(2)) : san
            if NetworkAddress(bare) == nil {
                error("spec.kubernetes.certSANs[\(i)]", "\"\(san)\" is not an IPv4 address or DNS name",
                      expected: Validation.addressExpectation)
            }
        }
    }

    mutating func cidr(_ text: String, _ path: String) -> CIDR? {
        if skip.contains(path) { return nil }
        switch CIDR.parse(text) {
        case .success(let c): return c
        case .failure(let e):
            error(path, "\"\(text)\" \(e)", expected: "an IPv4 CIDR block like 10.244.0.0/16")
            return nil
        }
    }

    mutating func checkNetwork(_ n: ClusterPlan.Network, hostCount: Int) -> (CIDR?, CIDR?) {
        let pod = cidr(n.podSubnet, "spec.network.podSubnet")
        let svc = cidr(n.serviceSubnet, "spec.network.serviceSubnet")
        if let pod, let svc, pod.overlaps(svc) {
            error("spec.network.serviceSubnet", "\(svc) overlaps the pod subnet \(pod)",
                  expected: "a block disjoint from spec.network.podSubnet, like 10.96.0.0/12")
        }
        if let pod {
            if n.cni == .flannel, pod.prefix > 16 {
                error("spec.network.podSubnet", "flannel needs a /16 or larger pod subnet, found /\(pod.prefix)",
                      expected: "a prefix of 16 or less, like 10.244.0.0/16")
            } else if pod.prefix > 24 {
                error("spec.network.podSubnet", "/\(pod.prefix) is smaller than one node's /24 pod range",
                      expected: "a prefix of 24 or less")
            } else if hostCount > 0, pod.prefix <= 24, (1 << (24 - pod.prefix)) < hostCount {
                error("spec.network.podSubnet",
                      "\(pod) holds \(1 << (24 - pod.prefix)) node ranges (/24 each) but the plan has \(hostCount) hosts",
                      expected: "a larger block")
            }
        }
        if let svc, svc.prefix < 12 {
            error("spec.network.serviceSubnet", "/\(svc.prefix) is larger than the API server accepts",
                  expected: "a prefix of 12 or more")
        }
        if !DNSName.isSubdomain(n.dnsDomain) {
            error("spec.network.dnsDomain", "\"\(n.dnsDomain)\" is not a DNS domain", expected: "like cluster.local")
        }
        return (pod, svc)
    }

    mutating func checkSSH(_ s: ClusterPlan.SSHDefaults) {
        port(s.port, "spec.ssh.port")
        if s.user.isEmpty { error("spec.ssh.user", "must not be empty", expected: "a login name") }
        if s.connectTimeout < 1 {
            error("spec.ssh.connectTimeout", "must be at least 1 second, found \(s.connectTimeout)")
        }
        if let b = s.bastion {
            if b.address.isEmpty {
                error("spec.ssh.bastion.address", "must not be empty", expected: Validation.addressExpectation)
            } else {
                _ = address(b.address, "spec.ssh.bastion.address")
            }
            port(b.port, "spec.ssh.bastion.port")
        }
    }

    mutating func checkHosts(_ plan: ClusterPlan, pod: CIDR?, svc: CIDR?) {
        let hosts = plan.spec.hosts
        if hosts.isEmpty {
            error("spec.hosts", "the plan has no hosts", expected: "at least one control-plane host")
            return
        }
        var names: [String: Int] = [:]
        var endpoints: [String: Int] = [:]
        for (i, h) in hosts.enumerated() {
            let p = "spec.hosts[\(i)]"
            if h.name.isEmpty {
                error("\(p).name", "must not be empty", expected: "a DNS-1123 label, like worker-1")
            } else {
                if !DNSName.isLabel(h.name) {
                    error("\(p).name", "\"\(h.name)\" is not a DNS-1123 label",
                          expected: "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63")
                }
                if let first = names[h.name] {
                    error("\(p).name", "duplicate host name \"\(h.name)\" (also spec.hosts[\(first)])",
                          expected: "a name used once")
                } else {
                    names[h.name] = i
                }
            }
            port(h.port, "\(p).port")
            if let u = h.user, u.isEmpty { error("\(p).user", "must not be empty", expected: "a login name") }
            if h.address.isEmpty { error("\(p).address", "must not be empty", expected: Validation.addressExpectation) }
            if !h.address.isEmpty, let addr = address(h.address, "\(p).address") {
                let sshPort = h.port ?? plan.spec.ssh.port
                let key = "\(h.address.lowercased()):\(sshPort)"
                if let first = endpoints[key] {
                    error("\(p).address", "\(h.address):\(sshPort) is already used by spec.hosts[\(first)] (\(hosts[first].name))",
                          expected: "one host per address and port")
                } else {
                    endpoints[key] = i
                }
                if let ip = addr.ipv4 {
                    if let pod, pod.contains(ip) {
                        error("\(p).address", "\(ip) lies inside the pod subnet \(pod)",
                              expected: "host addresses outside spec.network.podSubnet")
                    }
                    if let svc, svc.contains(ip) {
                        error("\(p).address", "\(ip) lies inside the service subnet \(svc)",
                              expected: "host addresses outside spec.network.serviceSubnet")
                    }
                }
            }
            for (k, val) in h.labels.sorted(by: { $0.key < $1.key }) {
                if let why = Validator.labelKeyProblem(k) {
                    error("\(p).labels.\(k)", "label key \"\(k)\" \(why)", expected: Validator.labelKeyExpectation)
                }
                if let why = Validator.labelValueProblem(val) {
                    error("\(p).labels.\(k)", "label value \"\(val)\" \(why)", expected: Validator.labelValueExpectation)
                }
            }
            var taintKeys: Set<String> = []
            for (j, t) in h.taints.enumerated() {
                let tp = "\(p).taints[\(j)]"
                if !t.key.isEmpty, let why = Validator.labelKeyProblem(t.key) {
                    error("\(tp).key", "taint key \"\(t.key)\" \(why)", expected: Validator.labelKeyExpectation)
                }
                if let v = t.value, let why = Validator.labelValueProblem(v) {
                    error("\(tp).value", "taint value \"\(v)\" \(why)", expected: Validator.labelValueExpectation)
                }
                if !taintKeys.insert("\(t.key):\(t.effect.rawValue)").inserted {
                    error(tp, "duplicate taint \(t.key):\(t.effect.rawValue)", expected: "each key and effect once")
                }
            }
        }

        let cps = hosts.filter { $0.role == .controlPlane }
        if cps.isEmpty {
            if !hosts.enumerated().contains(where: { skip.contains("spec.hosts[\($0.offset)].role") }) {
                error("spec.hosts", "no host has role control-plane", expected: "at least one control-plane host")
            }
        } else {
            if cps.count > 1, plan.spec.kubernetes.controlPlaneEndpoint == nil {
                error("spec.kubernetes.controlPlaneEndpoint",
                      "\(cps.count) control planes need a shared controlPlaneEndpoint (kubeadm cannot add control planes to a cluster initialised without one)",
                      expected: "HOST:PORT of a load balancer or DNS name in front of all control planes")
            }
            if cps.count % 2 == 0 {
                warning("spec.hosts",
                        "\(cps.count) control planes: an even number adds no etcd fault tolerance over \(cps.count - 1)",
                        expected: "an odd number of control planes (1, 3, 5)")
            }
        }
    }

    mutating func checkAddons(_ addons: ClusterPlan.Addons) {
        var used: [Int: String] = [:]
        for (name, addon) in addons.all {
            if let v = addon.version {
                if v.trimmingCharacters(in: .whitespaces).isEmpty {
                    error("spec.addons.\(name).version", "must not be empty", expected: Validation.chartVersionExpectation)
                } else if !Validation.isChartVersion(v) {
                    error("spec.addons.\(name).version", "\"\(v)\" is not a chart version",
                          expected: Validation.chartVersionExpectation)
                }
            }
            let known = PlanDefaults.nodePorts[name] ?? [:]
            for (service, port) in addon.nodePorts.sorted(by: { $0.key < $1.key }) {
                let p = "spec.addons.\(name).nodePorts.\(service)"
                if known[service] == nil {
                    error(p, known.isEmpty ? "\(name) has no user interface to expose"
                                           : "unknown service \"\(service)\"",
                          expected: known.isEmpty ? nil : "one of " + known.keys.sorted().joined(separator: ", "))
                    continue
                }
                guard addon.enabled else { continue }
                if !(30000...32767).contains(port) {
                    error(p, "NodePort \(port) is outside the cluster's NodePort range",
                          expected: "30000–32767 (the kube-apiserver default --service-node-port-range)")
                } else if let other = used[port] {
                    error(p, "NodePort \(port) is already used by \(other)", expected: "a port no other service uses")
                } else {
                    used[port] = "spec.addons.\(name).nodePorts.\(service)"
                }
            }
        }
    }

    mutating func checkNamespaces(_ namespaces: [ClusterPlan.NamespacePolicy], cni: ClusterPlan.CNI) {
        var seen: Set<String> = []
        for (i, ns) in namespaces.enumerated() {
            let p = "spec.namespaces[\(i)]"
            if !ns.name.isEmpty {
                if !DNSName.isLabel(ns.name) {
                    error(p + ".name", "\"\(ns.name)\" is not a DNS-1123 label",
                          expected: "lower-case letters, digits and '-', at most 63")
                } else if !seen.insert(ns.name).inserted {
                    error(p + ".name", "namespace \"\(ns.name)\" is listed twice")
                }
            }
            if let l = ns.limitRange {
                for (q, text) in [("defaultRequest.cpu", l.requestCPU), ("defaultRequest.memory", l.requestMemory),
                                  ("default.cpu", l.limitCPU), ("default.memory", l.limitMemory)]
                    where !Quantity.isValid(text)
                {
                    error("\(p).limitRange.\(q)", "\"\(text)\" is not a Kubernetes quantity",
                          expected: "a quantity like 250m, 0.5, 128Mi or 1Gi")
                }
            }
            for (j, a) in ns.access.enumerated() {
                if a.users.isEmpty && a.groups.isEmpty {
                    error("\(p).access[\(j)]", "names no user and no group", expected: "users: [...] and/or groups: [...]")
                }
                for (field, names) in [("users", a.users), ("groups", a.groups)] {
                    for (k, n) in names.enumerated() where !Validation.isSubjectName(n) {
                        error("\(p).access[\(j)].\(field)[\(k)]", "\"\(n)\" is not a valid \(field == "users" ? "user" : "group") name",
                              expected: Validation.subjectExpectation)
                    }
                }
            }
            if ns.defaultDeny && cni == .flannel {
                warning("\(p).defaultDeny",
                        "flannel does not enforce NetworkPolicy: the default-deny policy is created but blocks nothing",
                        expected: "spec.network.cni: calico, which enforces NetworkPolicy")
            }
            if !ns.defaultDeny && ns.limitRange == nil && ns.access.isEmpty && !ns.name.isEmpty {
                warning(p, "asks for nothing: set defaultDeny, limitRange or access")
            }
        }
    }

    mutating func checkManifests(_ plan: ClusterPlan, fileExists: (String) -> Bool) {
        var seen: Set<String> = []
        for (i, m) in plan.spec.manifests.enumerated() {
            let p = "spec.manifests[\(i)]"
            if m.isEmpty { error(p, "must not be empty", expected: "a path to a YAML file"); continue }
            if !seen.insert(m).inserted { warning(p, "\"\(m)\" is listed twice"); continue }
            let resolved = Validation.resolve(m, against: plan.source.baseDirectory)
            if !fileExists(resolved) {
                error(p, "manifest file \"\(m)\" does not exist (looked for \(resolved))",
                      expected: "a path relative to the plan's directory")
            }
        }
    }

    // Kubernetes label syntax: [prefix/]name, name ≤ 63 of [A-Za-z0-9-_.] starting and ending alphanumeric.
    static let labelKeyExpectation = "[DNS-subdomain/]name, name at most 63 of letters, digits, '-', '_', '.'"
    static let labelValueExpectation = "empty, or at most 63 of letters, digits, '-', '_', '.', starting and ending with a letter or digit"

    static func isLabelName(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 63 else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) }
        return alnum(u.first!) && alnum(u.last!) && u.allSatisfy { alnum($0) || $0 == 45 || $0 == 95 || $0 == 46 }
    }

    static func labelKeyProblem(_ k: String) -> String? {
        let parts = k.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count > 2 { return "has more than one '/'" }
        if parts.count == 2, !DNSName.isSubdomain(String(parts[0])) { return "has a prefix that is not a DNS subdomain" }
        if !isLabelName(String(parts.last!)) { return "is not a valid label name" }
        return nil
    }

    static func labelValueProblem(_ v: String) -> String? {
        v.isEmpty || isLabelName(v) ? nil : "is not a valid label value"
    }
}

import Foundation

/// Kubernetes resource quantities (the subset plans use: decimal numbers with an optional SI or binary suffix).
enum Quantity {
    static let suffixes = ["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]

    static func isValid(_ s: String) -> Bool {
        guard let end = s.lastIndex(where: { $0.isNumber }) else { return false }
        let number = s[...end]
        let suffix = s[s.index(after: end)...]
        guard suffixes.contains(String(suffix)) else { return false }
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty || parts.count == 2 else { return false }
        return parts.allSatisfy { $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
            && parts.contains { !$0.isEmpty }
    }
}
