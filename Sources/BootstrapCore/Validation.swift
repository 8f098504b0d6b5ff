import Foundation

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

    /// The plan's Kubernetes version against what the state records (`UpgradeRules`): a skipped minor, a
    /// downgrade, a new cluster on a release past its end of life. Nothing when the state is not known.
    public static func upgrade(_ plan: ClusterPlan, recorded: RecordedCluster,
                               locations: [String: SourceLocation] = [:]) -> [Diagnostic]
    {
        let blockers: [Blocker]
        switch recorded {
        case .unknown: return []
        case .new: blockers = UpgradeRules.problems(target: plan.spec.kubernetes.version, recorded: nil)
        case .existing(let v): blockers = UpgradeRules.problems(target: plan.spec.kubernetes.version, recorded: v)
        }
        var v = Validator(locations: locations, skip: [])
        for b in blockers { v.error(b.path, b.reason) }
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

/// What the state says of the cluster a plan is checked against.
public enum RecordedCluster: Sendable, Hashable {
    /// Not read (the caller checks the state later, as plan and apply do through `Blockers`).
    case unknown
    /// No state, or nothing created yet.
    case new
    /// A live cluster, at the version the state records.
    case existing(version: String)

    public init(_ state: ClusterState?) {
        guard let state, state.cluster.initializedOn != nil else { self = .new; return }
        self = state.cluster.kubernetesVersion.map { .existing(version: $0) } ?? .unknown
    }
}
