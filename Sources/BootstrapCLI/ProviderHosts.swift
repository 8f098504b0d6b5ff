import BootstrapCore
import BootstrapEC2
import Foundation

/// What `plan` and `apply` ask of the provider's account: the instances the selectors choose, and the
/// security-group rules those instances lack (`EC2HostDiscoverer`; tests give a fake).
protocol ProviderAccount: HostDiscoverer {
    func missingRules(_ ec2: ClusterPlan.EC2, hosts: [DiscoveredHost], plan: ClusterPlan) async throws
        -> [SecurityGroupPlanner.Missing]
}

extension EC2HostDiscoverer: ProviderAccount {
    /// The account as the commands use it: a throttled call says on stderr that it is being retried.
    static var cli: EC2HostDiscoverer {
        EC2HostDiscoverer(retry: RetryPolicy(notice: { printError("note: EC2 \($0)") }))
    }
}

/// `spec.provider.ec2` in `plan` and `apply`: the instances found are added to the plan's hosts before the
/// plan is made (Core stays pure: it gets hosts, and never asks EC2).
enum ProviderHosts {
    /// The plan with the provider's hosts added, shown on stderr (stdout stays the plan's); the plan as it is
    /// when it has no provider. EC2 failures exit 1; hosts that make the plan invalid exit 2.
    static func resolve(_ plan: ClusterPlan, state: ClusterState?,
                        account: any ProviderAccount = EC2HostDiscoverer.cli) async throws -> ClusterPlan {
        try await resolveWithRules(plan, state: state, account: account).plan
    }

    /// `resolve`, and the security-group rules the instances lack. A missing
    /// rule without `manageSecurityGroups` is an error (exit 1) naming the group, the port and the source;
    /// with it, the rules are what apply adds after approval (and what a saved plan carries).
    static func resolveWithRules(_ plan: ClusterPlan, state: ClusterState?,
                                 account: any ProviderAccount = EC2HostDiscoverer.cli) async throws
        -> (plan: ClusterPlan, rules: [SecurityGroupRuleChange])
    {
        guard let ec2 = plan.spec.provider?.ec2 else { return (plan, []) }
        let found: (hosts: [DiscoveredHost], warnings: [String])
        do {
            found = try await account.discover(ec2)
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
        let missing: [SecurityGroupPlanner.Missing]
        do {
            missing = try await account.missingRules(ec2, hosts: found.hosts, plan: merged)
        } catch {
            printError("error: reading the instances' security groups (\(ec2.region)): \(error)")
            throw Exit.failure
        }
        if !missing.isEmpty && !ec2.manageSecurityGroups {
            printError("error: the instances' security groups do not allow what the cluster needs between its members "
                       + (ec2.operatorCidrs.isEmpty ? "" : "and from spec.provider.ec2.operatorCidrs ")
                       + "(add these rules, or set spec.provider.ec2.manageSecurityGroups: true):\n"
                       + missing.map { "  missing: \($0)" }.joined(separator: "\n"))
            throw Exit.failure
        }
        return (merged, missing.map(\.change))
    }

    /// The rules apply adds, as plan lines: `+ sg-0abc: allow tcp/6443 from sg-0def (…)`.
    static func rulesText(_ rules: [SecurityGroupRuleChange]) -> String {
        guard !rules.isEmpty else { return "" }
        return "Security groups (spec.provider.ec2.manageSecurityGroups): \(rules.count) rule\(rules.count == 1 ? "" : "s") to add\n"
            + rules.map { "  + \($0.text)\n" }.joined() + "\n"
    }

    /// Adds the rules the groups still lack (after approval); exit 1 when EC2 refuses.
    static func addRules(_ rules: [SecurityGroupRuleChange], plan: ClusterPlan) async throws {
        guard let ec2 = plan.spec.provider?.ec2, !rules.isEmpty else { return }
        do {
            _ = try await EC2HostDiscoverer.cli.authorize(ec2, rules.map(IngressRule.init))
        } catch {
            printError("error: adding the security-group rules: \(error)")
            throw Exit.failure
        }
    }

    /// `Hosts from EC2 (us-east-1): 3 instances` and one line each.
    static func summary(_ hosts: [DiscoveredHost], ec2: ClusterPlan.EC2, merged: ClusterPlan) -> String {
        var out = "Hosts from EC2 (\(ec2.region)): \(hosts.count) running instance\(hosts.count == 1 ? "" : "s")"
        for h in merged.spec.hosts {
            guard let id = h.instanceId, let d = hosts.first(where: { $0.instanceId == id }) else { continue }
            let zone = [d.availabilityZone, d.instanceType].compactMap { $0 }.joined(separator: ", ")
            out += "\n  \(h.name)  \(id)  \(h.role.rawValue)  ssh \(h.address), cluster \(d.privateAddress)"
                + (d.publicAddress.map { $0 == h.address ? "" : ", public \($0)" } ?? "")
                + (zone.isEmpty ? "" : "  (\(zone))")
        }
        return out
    }
}
