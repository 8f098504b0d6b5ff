import BootstrapCore
import Foundation

public struct PreflightIssue: Sendable, Hashable {
    public var host: String?
    public var severity: EngineEvent.Severity
    public var message: String
}

/// Checks every host before anything changes. Read-only: facts already gathered, plus one command per host
/// for sudo, free ports and the endpoint's name, and the package repository's releases (`repositoryIssues`).
enum Preflight {
    static let minCPUs = 2
    static let minMemoryMB = 1700
    static let controlPlanePorts = [6443, 2379, 2380, 10250, 10257, 10259]
    static let workerPorts = [10250]

    static func check(plan: ClusterPlan, state: ClusterState, facts: [String: HostFacts],
                      runners: [String: HostRunner], parallelism: Int = PlanDefaults.parallelism) async -> [PreflightIssue]
    {
        var issues: [PreflightIssue] = []
        func error(_ host: String?, _ m: String) { issues.append(PreflightIssue(host: host, severity: .error, message: m)) }

        for host in plan.spec.hosts {
            guard let f = facts[host.name] else { continue }
            if !NodeOSes.supports(f) {
                error(host.name, "unsupported OS \(f.osID) \(f.osVersion) (supported: \(NodeOSes.supportedList))")
            }
            if !["amd64", "arm64"].contains(f.architecture) {
                error(host.name, "unsupported architecture \(f.architecture) (supported: amd64, arm64)")
            }
            if host.role == .controlPlane {
                if f.cpus < minCPUs { error(host.name, "control plane needs at least \(minCPUs) CPUs, has \(f.cpus)") }
                if f.memoryMB < minMemoryMB {
                    error(host.name, "control plane needs at least \(minMemoryMB) MB of memory, has \(f.memoryMB) MB")
                }
            }
            if IPv4Address(host.clusterAddress) == nil {
                error(host.name, "no cluster address: \(host.address) is a DNS name and the host has no default route with an IPv4 address; set privateAddress (kubeadm advertises an IP address only)")
            }
            let record = state.hosts[host.name]
            let joined = record?.steps[StepName.initControlPlane.rawValue] != nil
                || record?.steps[StepName.joinControlPlane.rawValue] != nil
                || record?.steps[StepName.joinWorker.rawValue] != nil
            let sameMachine = record?.facts?.machineID == f.machineID && record?.address == host.address
            let startedCluster = state.cluster.initializedOn != nil || state.cluster.secrets["bootstrapToken"] != nil
            if f.inCluster && !(joined && sameMachine) && !startedCluster {
                error(host.name, "already a node of a cluster this state does not know (/etc/kubernetes/kubelet.conf exists); reset it (kubeadm reset -f) or restore the state")
            }
        }
        for (what, key) in [("hostname", \HostFacts.hostname), ("product_uuid", \HostFacts.productUUID),
                            ("machine-id", \HostFacts.machineID)] as [(String, KeyPath<HostFacts, String>)]
        {
            var seen: [String: String] = [:]
            for host in plan.spec.hosts {
                guard let v = facts[host.name]?[keyPath: key], !v.isEmpty else { continue }
                if let other = seen[v] {
                    error(host.name, "\(what) \(v) is the same as on \(other); every node needs its own")
                } else {
                    seen[v] = host.name
                }
            }
        }

        // One command per host: sudo, ports, endpoint name.
        let endpointHost = plan.spec.kubernetes.controlPlaneEndpoint.map { KubeadmConfig.hostPart($0) }
        let needsResolve = endpointHost.map { IPv4Address($0) == nil } ?? false
        let probed = plan.spec.hosts.compactMap { h in runners[h.name].map { (h, $0) } }
        async let repository = repositoryIssues(plan: plan, facts: facts, runners: runners, parallelism: parallelism)
        let found = await Parallel.map(probed, limit: parallelism) { (host, r) -> [PreflightIssue] in
            let record = state.hosts[host.name]
            // A node's ports are its own kubelet's and API server's; that includes a host whose join finished
            // in a run that was killed before recording it (its join step will find it done).
            let startedCluster = state.cluster.initializedOn != nil || state.cluster.secrets["bootstrapToken"] != nil
            let isNode = (record?.steps.keys.contains { StepName(rawValue: $0)?.isOneShot == true }) ?? false
                || (facts[host.name]?.inCluster == true && startedCluster)
            let ports = isNode ? [] : (host.role == .controlPlane ? controlPlanePorts : workerPorts)
            var out: [PreflightIssue] = []
            var lines = ["true"]
            for p in ports {
                lines.append("if timeout 2 bash -c \(Shell.quote("exec 3<>/dev/tcp/\(host.clusterAddress)/\(p)")) 2>/dev/null; then echo port-busy=\(p); fi")
            }
            if needsResolve, let name = endpointHost {
                lines.append("getent hosts \(Shell.quote(name)) >/dev/null || echo resolve-failed")
            }
            // The facts already ran through sudo: with nothing else to check, no round trip is needed.
            if lines == ["true"] { return out }
            do {
                let result = try await r.run(ShellCommand(script: lines.joined(separator: "\n")), timeout: .seconds(60))
                for line in result.stdoutText.split(separator: "\n") {
                    if line.hasPrefix("port-busy=") {
                        out.append(PreflightIssue(host: host.name, severity: .error,
                            message: "port \(line.dropFirst(10)) on \(host.clusterAddress) is already in use"))
                    } else if line == "resolve-failed" {
                        out.append(PreflightIssue(host: host.name, severity: .error,
                            message: "the control-plane endpoint \(endpointHost ?? "") does not resolve on this host"))
                    }
                }
            } catch {
                out.append(PreflightIssue(host: host.name, severity: .error,
                                          message: ErrorText.describe(error, about: host.name)))
            }
            return out
        }
        issues += found.flatMap { $0 }
        issues += await repository
        return issues.sorted { ($0.host ?? "", $0.message) < ($1.host ?? "", $1.message) }
    }
}
