import BootstrapCore
import Foundation

/// Is the plan's Kubernetes release in the package repository the hosts install it from? Validation knows the
/// minors (what differs per minor is in `KubernetesReleases`); which patch releases exist is the repository's
/// business, asked here, before anything changes.
///
/// The question goes to the hosts' own package manager (`NodeOS.repositoryVersionsQuery`: `apt-cache madison`,
/// `dnf list --showduplicates`), reading the repository of the plan's minor through a temporary configuration:
/// on a fresh host the repository step has not run yet, on an upgrade the host still points at the old minor,
/// and preflight must leave both as they are. The hosts see the repository through their own network (a proxy,
/// a firewall), which is why the hosts ask and not this machine. One host asks for each operating system
/// release and architecture (they read the same repository), among the hosts whose packages are not at the
/// plan's version yet; when every host is, nothing is asked.
extension Preflight {
    static func repositoryIssues(plan: ClusterPlan, facts: [String: HostFacts], runners: [String: HostRunner],
                                 parallelism: Int) async -> [PreflightIssue]
    {
        let version = plan.spec.kubernetes.version
        guard let t = KubernetesReleases.triple(version) else { return [] }
        let minor = "\(t[0]).\(t[1])"
        // (OS, release, architecture) → the hosts that will install packages, in plan order.
        var groups: [String: [String]] = [:]
        var order: [String] = []
        for host in plan.spec.hosts {
            guard let f = facts[host.name], let os = NodeOSes.for(f), NodeOSes.supports(f),
                  runners[host.name] != nil else { continue }
            let wanted = os.kubernetesPackageVersion(version)
            guard NodeRecipes.kubernetesPackages.contains(where: { f.packages[$0] != wanted }) else { continue }
            let key = "\(f.osID) \(f.osVersion) \(f.architecture)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(host.name)
        }
        let asked = order.compactMap { key -> (String, [String], any NodeOS, HostRunner)? in
            guard let hosts = groups[key], let first = hosts.first, let f = facts[first], let os = NodeOSes.for(f),
                  let r = runners[first] else { return nil }
            return (first, hosts, os, r)
        }
        let found = await Parallel.map(asked, limit: parallelism) { (host, hosts, os, r) -> PreflightIssue? in
            let base = os.repositoryBase(minor: minor)
            let others = hosts.count > 1
                ? " (\(hosts.count - 1) other host\(hosts.count == 2 ? "" : "s") of the same OS and architecture use the same repository)"
                : ""
            do {
                let result = try await r.probe(
                    ShellCommand(script: os.repositoryVersionsQuery("kubeadm", minor: minor)),
                    timeout: .seconds(max(60, plan.spec.timeouts.packages)))
                guard result.succeeded else {
                    let why = result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
                    return PreflightIssue(host: host, severity: .error,
                        message: "cannot read the Kubernetes package repository \(base) (exit \(result.exitStatus)): \(why.suffix(600))")
                }
                let versions = available(os.parseRepositoryVersions(result.stdoutText, package: "kubeadm"), minor: minor)
                if versions.contains(version) { return nil }
                let has = versions.isEmpty ? "it has no kubeadm of \(minor)" : "it has \(versions.joined(separator: ", "))"
                return PreflightIssue(host: host, severity: .error,
                    message: "Kubernetes \(version) is not in the package repository \(base) (\(has))\(others); set spec.kubernetes.version to a release it has")
            } catch {
                return PreflightIssue(host: host, severity: .error, message: ErrorText.describe(error, about: host))
            }
        }
        return found.compactMap { $0 }
    }

    /// The releases of `minor` among `versions`, each once, oldest first.
    static func available(_ versions: [String], minor: String) -> [String] {
        let mine = Set(versions.filter { v in
            KubernetesReleases.triple(v).map { "\($0[0]).\($0[1])" == minor } ?? false
        })
        return mine.sorted { (KubernetesReleases.triple($0) ?? []).lexicographicallyPrecedes(KubernetesReleases.triple($1) ?? []) }
    }
}
