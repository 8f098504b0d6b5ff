import Foundation

/// The Kubernetes releases this tool installs: the three newest minors, with the patch releases known to
/// exist. The lab's package repository carries exactly this table.
public enum KubernetesReleases {
    /// Minor (`1.34`) → known patch numbers.
    public static let supported: [String: [Int]] = [
        "1.32": Array(0...9),
        "1.33": Array(0...5),
        "1.34": Array(0...1),
    ]

    /// Supported minors, oldest first.
    public static var minors: [String] {
        supported.keys.sorted { a, b in
            let x = a.split(separator: ".").compactMap { Int($0) }, y = b.split(separator: ".").compactMap { Int($0) }
            return x.lexicographicallyPrecedes(y)
        }
    }

    /// Every supported full version, oldest first.
    public static var all: [String] {
        minors.flatMap { m in (supported[m] ?? []).sorted().map { "\(m).\($0)" } }
    }

    /// The newest supported version.
    public static var latest: String { all.last ?? "" }

    public enum Problem: Error, Sendable, Hashable {
        case malformed
        case notPinned(minor: String)
        case unsupportedMinor(minor: String)
        case unknownPatch(minor: String, patch: Int)
    }

    /// Normalises `v1.34.1` / `1.34.1` to `1.34.1` and checks it against the table.
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
        guard let patches = supported[m] else { return .failure(.unsupportedMinor(minor: m)) }
        guard patches.contains(patch) else { return .failure(.unknownPatch(minor: m, patch: patch)) }
        return .success("\(m).\(patch)")
    }

    /// Human text for `expected …` in diagnostics.
    public static var expectation: String {
        minors.map { m in
            let p = (supported[m] ?? []).sorted()
            return "\(m).\(p.first ?? 0)–\(m).\(p.last ?? 0)"
        }.joined(separator: ", ")
    }
}
