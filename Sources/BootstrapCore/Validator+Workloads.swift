import Foundation

/// What runs in the cluster: add-ons, namespace security defaults, manifest files.
extension Validator {
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
            if let c = addon.storageClass, !DNSName.isSubdomain(c) {
                error("spec.addons.\(name).storageClass", "\"\(c)\" is not a StorageClass name",
                      expected: "the name of a StorageClass of the cluster (a DNS-1123 subdomain: lower-case letters, digits, '-' and '.')")
            }
            if let size = addon.storageSize {
                if addon.storageClass == nil {
                    error("spec.addons.\(name).storageSize", "has no effect without storageClass (the data then lives in the pod)",
                          expected: "storageClass: the StorageClass whose volume holds the data, or no storageSize")
                } else if !Quantity.isValid(size) || !size.contains(where: { ("1"..."9").contains($0) }) {
                    error("spec.addons.\(name).storageSize", "\"\(size)\" is not a storage size",
                          expected: "a positive Kubernetes quantity like 5Gi or 500Mi")
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
            let resolved = Manifests.path(of: m, in: plan)
            if !fileExists(resolved) {
                error(p, "manifest file \"\(m)\" does not exist (looked for \(resolved))",
                      expected: "a path relative to the plan's directory")
            }
        }
    }
}
