import Foundation

/// A plan saved by `bootstrap plan --out FILE`: the resolved plan, the `ApplyPlan` (changes and actions),
/// and the state it was made against, so `apply FILE` can refuse it once the state has moved on.
public struct SavedPlan: Sendable, Hashable, Codable {
    /// 2: the actions were added (format 1 had only the changes).
    public static let currentFormatVersion = 2

    public var formatVersion: Int
    public var toolVersion: String
    public var plan: ClusterPlan
    /// Serial and lineage of the state the plan was made against; nil when there was no state yet.
    public var stateSerial: Int?
    public var stateLineage: String?
    public var changes: ChangeSet
    /// What `apply FILE` runs.
    public var actions: [PlannedAction]
    /// The security-group rules `apply FILE` adds first (`manageSecurityGroups`); absent when none.
    public var securityGroupRules: [SecurityGroupRuleChange]?

    public init(plan: ClusterPlan, state: ClusterState?, changes: ChangeSet, actions: [PlannedAction] = [],
                toolVersion: String = ToolVersion.current) {
        self.formatVersion = SavedPlan.currentFormatVersion
        self.toolVersion = toolVersion
        self.plan = plan
        self.stateSerial = state?.serial
        self.stateLineage = state?.lineage
        self.changes = changes
        self.actions = actions
    }

    public init(plan: ClusterPlan, state: ClusterState?, applyPlan: ApplyPlan, toolVersion: String = ToolVersion.current) {
        self.init(plan: plan, state: state, changes: applyPlan.changes, actions: applyPlan.actions,
                  toolVersion: toolVersion)
    }

    /// The saved changes and actions.
    public var applyPlan: ApplyPlan { ApplyPlan(changes: changes, actions: actions) }

    /// Why this saved plan may no longer be applied to `state`, or nil when it is still current.
    public func staleness(against state: ClusterState?) -> String? {
        if formatVersion > SavedPlan.currentFormatVersion {
            return "the saved plan has format \(formatVersion); this bootstrap reads up to \(SavedPlan.currentFormatVersion)"
        }
        switch (stateLineage, state) {
        case (nil, nil):
            return nil
        case (nil, let s?):
            return "the plan was made when no state existed, but the state now exists (serial \(s.serial)); run `bootstrap plan` again"
        case (_?, nil):
            return "the plan was made against state serial \(stateSerial ?? 0), but there is no state file now; run `bootstrap plan` again"
        case (let lineage?, let s?):
            if lineage != s.lineage {
                return "the plan was made against another state (lineage \(lineage), the state is \(s.lineage))"
            }
            if let serial = stateSerial, serial != s.serial {
                return "the state changed since the plan was made (serial \(serial) → \(s.serial)); run `bootstrap plan` again"
            }
            if s.cluster.name != plan.name {
                return "the plan is for cluster \"\(plan.name)\", the state for \"\(s.cluster.name)\""
            }
            return nil
        }
    }
}

extension SavedPlan {
    public enum LoadError: Error, Sendable, Equatable, CustomStringConvertible {
        case notASavedPlan(String)
        case newerFormat(Int)
        case olderFormat(Int)

        public var description: String {
            switch self {
            case .notASavedPlan(let d): return "not a plan saved by `bootstrap plan --out` (\(d))"
            case .newerFormat(let v):
                return "the saved plan has format \(v); this bootstrap reads up to \(SavedPlan.currentFormatVersion)"
            case .olderFormat(let v):
                return "the saved plan has format \(v), from an older bootstrap; run `bootstrap plan --out` again"
            }
        }
    }

    /// The file `bootstrap plan --out` writes: pretty JSON with sorted keys, ending with a newline.
    public func encoded() -> Data { Data(PrettyJSON.text(self).utf8) }

    /// Reads a file written by `bootstrap plan --out`.
    public static func decode(_ data: Data) throws -> SavedPlan {
        struct Probe: Decodable { var formatVersion: Int? }
        guard let probe = try? JSONDecoder().decode(Probe.self, from: data), let v = probe.formatVersion else {
            throw LoadError.notASavedPlan("no formatVersion")
        }
        if v > SavedPlan.currentFormatVersion { throw LoadError.newerFormat(v) }
        if v < SavedPlan.currentFormatVersion { throw LoadError.olderFormat(v) }
        do {
            return try JSONDecoder().decode(SavedPlan.self, from: data)
        } catch {
            throw LoadError.notASavedPlan("\(error)")
        }
    }
}
