import Foundation

/// Hosts: names, addresses, roles and the control-plane layout, labels and taints.
extension Validator {
    mutating func checkHosts(_ plan: ClusterPlan, pod: CIDR?, svc: CIDR?) {
        let hosts = plan.spec.hosts
        // Hosts found in EC2 are added (and these checks made again) once the instances are known.
        let discovering = plan.spec.provider?.ec2 != nil && !hosts.contains { $0.instanceId != nil }
        if let ec2 = plan.spec.provider?.ec2 { checkEC2(ec2) }
        if hosts.isEmpty, discovering { return }
        if hosts.isEmpty {
            error("spec.hosts", "the plan has no hosts", expected: "at least one control-plane host")
            return
        }
        var names: [String: Int] = [:]
        var endpoints: [String: Int] = [:]
        var privateAddresses: [String: Int] = [:]
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
            if let pa = h.privateAddress {
                checkPrivateAddress(pa, "\(p).privateAddress", index: i, seen: &privateAddresses, pod: pod, svc: svc)
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
        if cps.isEmpty, discovering {
            // The control planes may be among the instances.
        } else if cps.isEmpty {
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

    /// `privateAddress`: what kubeadm advertises and the kubelet binds, so an IPv4 address (never a DNS name,
    /// which kubeadm refuses), one host each, outside the pod and service subnets.
    mutating func checkPrivateAddress(_ a: String, _ path: String, index: Int, seen: inout [String: Int],
                                      pod: CIDR?, svc: CIDR?)
    {
        guard let ip = IPv4Address(a) else {
            error(path, "\"\(a)\" is not an IPv4 address (kubeadm advertises it and the kubelet binds it: a DNS name is refused)",
                  expected: "the host's IPv4 address inside the cluster's network, like 10.0.1.10")
            return
        }
        if let first = seen[a] {
            error(path, "\(a) is already the privateAddress of spec.hosts[\(first)]", expected: "one host per address")
        } else {
            seen[a] = index
        }
        if let pod, pod.contains(ip) {
            error(path, "\(a) lies inside the pod subnet \(pod)", expected: "host addresses outside spec.network.podSubnet")
        }
        if let svc, svc.contains(ip) {
            error(path, "\(a) lies inside the service subnet \(svc)",
                  expected: "host addresses outside spec.network.serviceSubnet")
        }
    }

    /// `spec.provider.ec2`: a region name, an http(s) endpoint, and selectors each with tags or instance ids.
    mutating func checkEC2(_ ec2: ClusterPlan.EC2) {
        let p = "spec.provider.ec2"
        if !ec2.region.isEmpty, ec2.region.range(of: #"^[a-z]{2}(-[a-z]+)+-[0-9]+$"#, options: .regularExpression) == nil {
            error("\(p).region", "\"\(ec2.region)\" is not an AWS region name", expected: "a region like us-east-1 or eu-central-1")
        }
        if let e = ec2.endpoint {
            let url = URL(string: e)
            if url?.host == nil || !["http", "https"].contains(url?.scheme ?? "") {
                error("\(p).endpoint", "\"\(e)\" is not an http(s) URL",
                      expected: "the EC2 API's URL, like https://vpce-0abc.ec2.us-east-1.vpce.amazonaws.com")
            }
        }
        if ec2.hosts.isEmpty {
            error("\(p).hosts", "no host selector", expected: "at least one {role, tags} or {role, instanceIds}")
        }
        for (i, c) in ec2.operatorCidrs.enumerated() {
            if case .failure(let why) = CIDR.parse(c) {
                error("\(p).operatorCidrs[\(i)]", "\"\(c)\" \(why)",
                      expected: "an IPv4 CIDR block, like 203.0.113.7/32 for one address")
            }
        }
        for (i, s) in ec2.hosts.enumerated() {
            let sp = "\(p).hosts[\(i)]"
            if s.tags.isEmpty == s.instanceIds.isEmpty {
                error(sp, s.tags.isEmpty ? "has neither tags nor instanceIds" : "has both tags and instanceIds",
                      expected: "either tags (every one must match) or instanceIds")
            }
            for (k, _) in s.tags where k.isEmpty {
                error("\(sp).tags", "a tag key is empty", expected: "tag keys like Name or kubernetes.io/cluster/demo")
            }
            for (j, id) in s.instanceIds.enumerated()
            where id.range(of: #"^i-([0-9a-f]{8}|[0-9a-f]{17})$"#, options: .regularExpression) == nil {
                error("\(sp).instanceIds[\(j)]", "\"\(id)\" is not an instance id", expected: "i- and 8 or 17 hex digits, like i-0123456789abcdef0")
            }
        }
    }
}
