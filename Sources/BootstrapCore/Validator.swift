import Foundation

/// Checks a decoded plan field by field, collecting diagnostics with their place in the file.
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
        checkCertificates(spec.certificates)
        if spec.upgrade.batchSize(workers: 1) == nil {
            error("spec.upgrade.maxUnavailable", "\"\(spec.upgrade.maxUnavailable)\" is not a number of workers",
                  expected: "a count ≥ 1 (2) or a percentage of the workers from 1% to 100% (\"25%\")")
        }
        if !range.contains(spec.upgrade.drainTimeout) {
            error("spec.upgrade.drainTimeout", "must be between \(range.lowerBound) and \(range.upperBound) seconds, found \(spec.upgrade.drainTimeout)",
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
            error(path, "\"\(version)\" names a minor release; pin a patch release",
                  expected: "\(m).PATCH, a patch release the hosts' package repository has (like \(m).\(KubernetesReleases.info(m)?.latestPatch ?? 0))")
        case .failure(.unsupportedMinor(let m)):
            error(path, "Kubernetes \(m) is not supported by this version of bootstrap",
                  expected: "one of \(KubernetesReleases.expectation)")
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
}

extension Validator {
    /// `spec.certificates.renewBefore`: a duration within a certificate's year.
    mutating func checkCertificates(_ c: ClusterPlan.CertificatePolicy) {
        let path = "spec.certificates.renewBefore"
        guard let seconds = Certificates.seconds(c.renewBefore) else {
            error(path, "\"\(c.renewBefore)\" is not a duration", expected: Certificates.durationExpectation)
            return
        }
        if !Certificates.renewBeforeRange.contains(seconds) {
            error(path, "\(c.renewBefore) is out of range: kubeadm's certificates last a year, so a renewal window "
                  + "of a year or more would renew them on every apply", expected: Certificates.durationExpectation)
        }
    }
}
