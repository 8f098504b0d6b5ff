import Foundation

/// The Kubernetes releases this tool installs, and what differs per minor release. The lab's package
/// repository (lab/labnode/assets.py `K8S_PATCHES`) carries the same minors and patches.
///
/// Patch releases are not listed as a rule: any patch of a supported minor passes validation, and preflight
/// asks the hosts' package repository whether it has it (`Preflight.repositoryIssues`). `latestPatch` is what
/// public material showed when this table was written, for suggestions and defaults only.
/// Facts (pkgs.k8s.io, the Kubernetes release notes, late 2026): 1.34 up to 1.34.7, 1.35 up to 1.35.5,
/// 1.36 up to 1.36.1 are maintained; 1.33 is past its end of life and kept only as a source to upgrade from.
/// kubeadm's configuration API is `kubeadm.k8s.io/v1beta4` for every one of them (1.31 and later).
public enum KubernetesReleases {
    /// What the tool knows about one minor release.
    public struct Minor: Sendable, Hashable {
        public let minor: String
        /// The newest patch release public material showed when this table was written (the repository may
        /// have newer ones): the suggested version in messages and the default, never a limit.
        public let latestPatch: Int
        /// Past its end of life: a cluster may run it only to be upgraded away from it.
        public let upgradeSourceOnly: Bool
        /// kubeadm's configuration API for this minor.
        public var kubeadmConfigAPIVersion: String { KubernetesReleases.kubeadmConfigAPIVersion(minor) }
    }

    /// Oldest first.
    public static let table: [Minor] = [
        Minor(minor: "1.33", latestPatch: 5, upgradeSourceOnly: true),
        Minor(minor: "1.34", latestPatch: 7, upgradeSourceOnly: false),
        Minor(minor: "1.35", latestPatch: 5, upgradeSourceOnly: false),
        Minor(minor: "1.36", latestPatch: 1, upgradeSourceOnly: false),
    ]

    /// Minor (`1.34`) → the patch numbers known when this table was written (not a limit: see `resolve`).
    public static let supported: [String: [Int]] = Dictionary(
        uniqueKeysWithValues: table.map { ($0.minor, Array(0...$0.latestPatch)) })

    /// Supported minors, oldest first.
    public static var minors: [String] { table.map(\.minor) }

    /// Minors a new cluster may use (not past their end of life), oldest first.
    public static var maintainedMinors: [String] { table.filter { !$0.upgradeSourceOnly }.map(\.minor) }

    /// Every supported full version, oldest first.
    public static var all: [String] {
        minors.flatMap { m in (supported[m] ?? []).sorted().map { "\(m).\($0)" } }
    }

    /// The newest supported version.
    public static var latest: String { all.last ?? "" }

    public static func info(_ minor: String) -> Minor? { table.first { $0.minor == minor } }

    /// `kubeadm.k8s.io/v1beta4` from 1.31 on, `v1beta3` before.
    public static func kubeadmConfigAPIVersion(_ minor: String) -> String {
        guard let (major, m) = numbers(minor) else { return "kubeadm.k8s.io/v1beta4" }
        return major > 1 || m >= 31 ? "kubeadm.k8s.io/v1beta4" : "kubeadm.k8s.io/v1beta3"
    }

    public enum Problem: Error, Sendable, Hashable {
        case malformed
        case notPinned(minor: String)
        case unsupportedMinor(minor: String)
    }

    /// Normalises `v1.34.1` / `1.34.1` to `1.34.1` and checks its minor against the table. Any patch of a
    /// supported minor is accepted: whether it exists is the package repository's to say (preflight).
    public static func resolve(_ text: String) -> Result<String, Problem> {
        var t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("v") || t.hasPrefix("V") { t.removeFirst() }
        let parts = t.split(separator: ".", omittingEmptySubsequences: false)
        guard (2...3).contains(parts.count),
              parts.allSatisfy({ !$0.isEmpty && $0.count <= 4 && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let major = Int(parts[0]), let minor = Int(parts[1])
        else { return .failure(.malformed) }
        let m = "\(major).\(minor)"
        guard parts.count == 3, let patch = Int(parts[2]) else {
            return .failure(supported[m] == nil ? .unsupportedMinor(minor: m) : .notPinned(minor: m))
        }
        guard supported[m] != nil else { return .failure(.unsupportedMinor(minor: m)) }
        return .success("\(m).\(patch)")
    }

    /// Human text for `expected …` in diagnostics: `1.33.x, 1.34.x, …`.
    public static var expectation: String {
        minors.map { "\($0).x" }.joined(separator: ", ")
    }

    // MARK: skew and upgrade rules (kubeadm and the version skew policy)

    /// What `kubeadm upgrade apply` would say of going from one version to another.
    public enum UpgradeStep: Sendable, Hashable {
        case unchanged
        /// Within one minor (1.35.2 → 1.35.5).
        case patch
        /// One minor up (1.35.x → 1.36.y).
        case minor
        /// More than one minor up: apply `through` (the newest known patch of the next minor) first.
        case skipsMinor(through: String)
        case downgrade
    }

    /// Both versions as `MAJOR.MINOR.PATCH` (a leading `v` allowed); nil when either is malformed.
    public static func upgradeStep(from: String, to: String) -> UpgradeStep? {
        guard let a = triple(from), let b = triple(to) else { return nil }
        if a == b { return .unchanged }
        if b.lexicographicallyPrecedes(a) { return .downgrade }
        if a[0] != b[0] { return .skipsMinor(through: "\(a[0]).\(a[1] + 1)") }
        switch b[1] - a[1] {
        case 0: return .patch
        case 1: return .minor
        default:
            let next = "\(a[0]).\(a[1] + 1)"
            return .skipsMinor(through: info(next).map { "\(next).\($0.latestPatch)" } ?? next)
        }
    }

    /// How many minors a kubelet may be older than the API server (the version skew policy since 1.28).
    public static let kubeletMaxMinorsBehind = 3
    /// kubectl is supported within one minor of the API server, both ways.
    public static let kubectlMaxMinorSkew = 1

    /// The version skew policy for a kubelet against its API server: never newer, at most three minors older.
    public static func kubeletSkewAllowed(kubelet: String, apiServer: String) -> Bool {
        guard let k = triple(kubelet), let s = triple(apiServer), k[0] == s[0] else { return false }
        if s.lexicographicallyPrecedes(k) { return false }
        return s[1] - k[1] <= kubeletMaxMinorsBehind
    }

    public static func triple(_ text: String) -> [Int]? {
        var t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("v") || t.hasPrefix("V") { t.removeFirst() }
        let parts = t.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        let n = parts.compactMap { Int($0) }
        return n.count == 3 ? n : nil
    }

    static func numbers(_ minor: String) -> (Int, Int)? {
        let p = minor.split(separator: ".").compactMap { Int($0) }
        return p.count >= 2 ? (p[0], p[1]) : nil
    }
}
