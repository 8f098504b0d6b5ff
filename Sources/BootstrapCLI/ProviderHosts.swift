import BootstrapCore
import BootstrapEC2
import Foundation

/// `spec.provider.ec2` in `plan` and `apply`: the instances found are added to the plan's hosts before the
/// plan is made (Core stays pure: it gets hosts, and never asks EC2).
enum ProviderHosts {
    /// The plan with the provider's hosts added, shown on stderr (stdout stays the plan's); the plan as it is
    /// when it has no provider. EC2 failures exit 1; hosts that make the plan invalid exit 2.
    static func resolve(_ plan: ClusterPlan, state: ClusterState?,
                        discoverer: any HostDiscoverer = EC2HostDiscoverer()) async throws -> ClusterPlan {
        guard let ec2 = plan.spec.provider?.ec2 else { return plan }
        let found: (hosts: [DiscoveredHost], warnings: [String])
        do {
            found = try await discoverer.discover(ec2)
        } catch {
            printError("error: finding the hosts of spec.provider.ec2 (\(ec2.region)): \(error)")
            throw Exit.failure
        }
        for w in found.warnings { printError("warning: spec.provider.ec2: \(w)") }
        let merged = plan.addingDiscovered(found.hosts, state: state)
        printError(summary(found.hosts, ec2: ec2, merged: merged))
        // The checks the plan's own hosts got, now on the instances (names, addresses, the control planes).
        let own = plan.spec.hosts.count
        let problems = Validation.validate(merged, fileExists: { _ in true })
            .filter { $0.severity == .error && ($0.path.hasPrefix("spec.hosts") || $0.path.hasPrefix("spec.kubernetes.controlPlaneEndpoint")) }
        var lines: [String] = []
        for d in problems {
            var where_ = d.path
            if let open = d.path.firstIndex(of: "["), let close = d.path.firstIndex(of: "]"),
               let i = Int(d.path[d.path.index(after: open)..<close]), i >= own, i < merged.spec.hosts.count
            {
                let h = merged.spec.hosts[i]
                where_ = "instance \(h.instanceId ?? "?") (\(h.name))" + d.path[d.path.index(after: close)...]
            }
            lines.append("error: \(where_): \(d.message)" + (d.expected.map { " (expected \($0))" } ?? ""))
        }
        if merged.controlPlanes.isEmpty {
            lines.append("error: spec.provider.ec2: no running instance is a control plane, and the plan lists none")
        }
        if !lines.isEmpty {
            printError(lines.joined(separator: "\n"))
            throw Exit.badInput
        }
        return merged
    }

    /// `Hosts from EC2 (us-east-1): 3 instances` and one line each.
    static func summary(_ hosts: [DiscoveredHost], ec2: ClusterPlan.EC2, merged: ClusterPlan) -> String {
        var out = "Hosts from EC2 (\(ec2.region)): \(hosts.count) running instance\(hosts.count == 1 ? "" : "s")"
        for h in merged.spec.hosts {
            guard let id = h.instanceId, let d = hosts.first(where: { $0.instanceId == id }) else { continue }
            let zone = [d.availabilityZone, d.instanceType].compactMap { $0 }.joined(separator: ", ")
            out += "\n  \(h.name)  \(id)  \(h.role.rawValue)  ssh \(h.address), cluster \(d.privateAddress)"
                + (zone.isEmpty ? "" : "  (\(zone))")
        }
        return out
    }
}
