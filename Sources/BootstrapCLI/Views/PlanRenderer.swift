import BootstrapCore
import Foundation

/// Turns an `ApplyPlan`'s changes into what `bootstrap plan` (and `apply`, before it asks) prints: text or JSON.
enum PlanRenderer {
    struct Style: Sendable {
        var color: Bool

        func paint(_ s: String, _ colour: Paint.Colour) -> String { Paint.paint(s, colour, color) }
        func bold(_ s: String) -> String { paint(s, .bold) }

        func action(_ a: Change.Action) -> String {
            switch a {
            case .create: return paint(a.symbol, .green)
            case .update: return paint(a.symbol, .yellow)
            case .delete: return paint(a.symbol, .red)
            case .replace: return paint(a.symbol, .magenta)
            }
        }
    }

    /// Terraform-style text, ending with a newline.
    static func text(_ set: ChangeSet, plan: ClusterPlan, state: ClusterState?, color: Bool = false) -> String {
        let st = Style(color: color)
        var out = ""
        let k = plan.spec.kubernetes
        let stateText = state.map { "state serial \($0.serial)" } ?? "no state yet"
        let net = plan.spec.network
        out += st.bold("Cluster \"\(plan.name)\"") + ": Kubernetes \(k.version), \(net.cni.rawValue) "
            + "(pods \(net.podSubnet), services \(net.serviceSubnet)), "
            + "\(plan.controlPlanes.count) control plane\(plan.controlPlanes.count == 1 ? "" : "s"), "
            + "\(plan.workers.count) worker\(plan.workers.count == 1 ? "" : "s") (\(stateText))\n\n"

        if set.changes.isEmpty && set.blocking.isEmpty {
            out += st.paint("No changes.", .boldGreen) + " The cluster matches the plan.\n"
            return out
        }
        if !set.changes.isEmpty {
            let used = Set(set.changes.map(\.action))
            let legend: [(Change.Action, String)] = [(.create, "create"), (.update, "update in place"),
                                                     (.delete, "destroy"), (.replace, "destroy and re-create")]
            out += "bootstrap will perform the following actions:\n"
            for (a, words) in legend where used.contains(a) {
                out += "  \(st.action(a)) \(words)\n"
            }
            out += "\n"
        }
        if let up = set.upgrade {
            out += "Kubernetes upgrade, in this order (one control plane at a time, workers in batches):\n"
            for line in up.lines { out += "  \(st.action(.update)) \(line)\n" }
            out += "\n"
        }
        for (i, c) in set.changes.enumerated() {
            if i > 0 { out += "\n" }
            var head = "  \(st.action(c.action)) \(c.subject.rawValue) \(st.bold(c.name))"
            var facts: [String] = []
            switch c.subject {
            case .host:
                if let a = c.address { facts.append(a) }
                if let r = c.role { facts.append(r.rawValue) }
            case .cluster:
                if let a = c.address { facts.append("endpoint \(a)") }
                if let v = c.version { facts.append("Kubernetes \(v)") }
            case .addon:
                facts.append("version \(c.version ?? "default")")
            case .manifest:
                break
            }
            if !facts.isEmpty { head += "  (" + facts.joined(separator: ", ") + ")" }
            out += head + "\n"
            for r in c.reasons { out += "      reason: \(r)\n" }
            if !c.changedPaths.isEmpty { out += "      changed: \(c.changedPaths.joined(separator: ", "))\n" }
            if !c.steps.isEmpty { out += "      steps: \(c.steps.joined(separator: ", "))\n" }
            if !c.supported { out += "      " + st.paint("note: apply cannot do this yet", .yellow) + "\n" }
        }
        let s = set.summary
        if !set.changes.isEmpty { out += "\n" }
        out += st.bold("Plan:") + " \(s.add) to add, \(s.change) to change, \(s.destroy) to destroy.\n"
        if !set.blocking.isEmpty {
            out += "\n" + st.paint("Error:", .boldRed) + " this plan cannot be applied:\n"
            for b in set.blocking { out += "  ✗ \(b.path): \(b.reason)\n" }
        }
        return out
    }

    /// The machine-readable plan (`bootstrap plan --json`).
    struct Document: Sendable, Hashable, Codable {
        static let currentFormatVersion = 1
        var formatVersion: Int
        var cluster: String
        var stateSerial: Int?
        var stateLineage: String?
        var changes: [Change]
        var blocking: [Blocker]
        /// A Kubernetes upgrade in its order (absent when there is none).
        var upgrade: UpgradePlan?
        var summary: ChangeSummary
        /// With `plan --refresh`: what the hosts showed (absent otherwise).
        var refresh: RefreshReport?
        /// What apply will run, in order, each with the actions it waits for (absent when not given).
        var actions: [Action]?
        /// The security-group rules apply adds first (`spec.provider.ec2.manageSecurityGroups`; absent when none).
        var securityGroupRules: [SecurityGroupRuleChange]?

        struct Action: Sendable, Hashable, Codable {
            /// `HOST/STEP`, `cluster/STEP`, `release/KEY`, `uninstall/KEY`, `cluster/manifests`, `remove/HOST`,
            /// `cluster/ready`.
            var id: String
            var after: [String]
        }
    }

    static func document(_ set: ChangeSet, state: ClusterState?, refresh: RefreshReport? = nil,
                                actions: [PlannedAction]? = nil) -> Document {
        Document(formatVersion: Document.currentFormatVersion, cluster: set.cluster, stateSerial: state?.serial,
                 stateLineage: state?.lineage, changes: set.changes, blocking: set.blocking, upgrade: set.upgrade,
                 summary: set.summary,
                 refresh: refresh,
                 actions: actions?.map { Document.Action(id: $0.id.description, after: $0.after.map(\.description)) })
    }

    static func document(_ plan: ApplyPlan, state: ClusterState?, refresh: RefreshReport? = nil) -> Document {
        document(plan.changes, state: state, refresh: refresh, actions: plan.actions)
    }

    /// Pretty JSON with sorted keys, ending with a newline (`PrettyJSON`).
    static func json<T: Encodable>(_ value: T) -> String { PrettyJSON.text(value) }

    /// The resolved plan as YAML (`validate --show-defaults`; `PlanYAML`).
    static func yaml(_ plan: ClusterPlan) -> String { PlanYAML.text(plan) }
}
