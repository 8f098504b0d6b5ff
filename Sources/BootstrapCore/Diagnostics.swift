/// One problem found in a plan: where (field path, line, column), what was found, what was expected.
public struct Diagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable, Comparable {
        case error, warning
        public static func < (a: Severity, b: Severity) -> Bool { a == .error && b == .warning }
    }

    public var severity: Severity
    /// Field path such as `spec.hosts[2].address`; empty for the document itself.
    public var path: String
    public var line: Int?
    public var column: Int?
    public var message: String
    public var expected: String?

    public init(severity: Severity, path: String, line: Int? = nil, column: Int? = nil, message: String,
                expected: String? = nil) {
        self.severity = severity
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        self.expected = expected
    }

    public var isError: Bool { severity == .error }

    /// `plan.yaml:12:7: error: spec.hosts[2].address: "10.0.1" is not … (expected …)`
    public func rendered(file: String) -> String {
        var loc = file
        if let l = line {
            loc += ":\(l)"
            if let c = column { loc += ":\(c)" }
        }
        let what = path.isEmpty ? message : "\(path): \(message)"
        let exp = expected.map { " (expected \($0))" } ?? ""
        return "\(loc): \(severity.rawValue): \(what)\(exp)"
    }

    public var description: String { rendered(file: "plan") }
}

extension Array where Element == Diagnostic {
    public var hasErrors: Bool { contains { $0.isError } }
    public var errors: [Diagnostic] { filter { $0.isError } }
    public var warnings: [Diagnostic] { filter { !$0.isError } }

    /// Sorted by position in the file (then path), so output follows the document.
    public var inDocumentOrder: [Diagnostic] {
        enumerated().sorted { a, b in
            let la = a.element.line ?? Int.max, lb = b.element.line ?? Int.max
            if la != lb { return la < lb }
            let ca = a.element.column ?? Int.max, cb = b.element.column ?? Int.max
            if ca != cb { return ca < cb }
            return a.offset < b.offset
        }.map(\.element)
    }
}

/// What `PlanLoader.load` returns: the plan when there is no error, and every diagnostic found.
public struct PlanLoadResult: Sendable {
    public var plan: ClusterPlan?
    /// The first `PlanLoader.reportLimit` diagnostics, in document order.
    public var diagnostics: [Diagnostic]
    /// Errors and warnings found past those, counted only.
    public var omittedErrors: Int
    public var omittedWarnings: Int

    public init(plan: ClusterPlan?, diagnostics: [Diagnostic], omittedErrors: Int = 0, omittedWarnings: Int = 0) {
        self.plan = plan
        self.diagnostics = diagnostics
        self.omittedErrors = omittedErrors
        self.omittedWarnings = omittedWarnings
    }

    /// The diagnostics as `FILE:LINE:COL: …` lines, then how many more there are and the totals.
    public func rendered(file: String) -> String {
        guard !diagnostics.isEmpty else { return "" }
        var out = diagnostics.map { $0.rendered(file: file) }.joined(separator: "\n")
        let more = omittedErrors + omittedWarnings
        if more > 0 {
            out += "\n… and \(more) more (\(omittedErrors) error\(omittedErrors == 1 ? "" : "s"), \(omittedWarnings) "
                + "warning\(omittedWarnings == 1 ? "" : "s")) not shown: the first \(diagnostics.count) are"
        }
        let e = diagnostics.errors.count + omittedErrors, w = diagnostics.warnings.count + omittedWarnings
        if e > 0 { out += "\n\(e) error\(e == 1 ? "" : "s"), \(w) warning\(w == 1 ? "" : "s")" }
        return out
    }
}

/// Levenshtein distance, for did-you-mean suggestions.
public func editDistance(_ a: String, _ b: String) -> Int {
    // On UTF-8 bytes: field names are ASCII, and this runs for every unknown key.
    let x = Array(a.lowercased().utf8), y = Array(b.lowercased().utf8)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count), cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[y.count]
}

/// The closest candidate to `word`, if it is close enough to be a plausible typo.
public func didYouMean(_ word: String, among candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word, $0)) }.sorted { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
    guard let best = scored.first else { return nil }
    let limit = Swift.max(2, word.count / 3)
    if best.1 <= limit { return best.0 }
    if candidates.contains(where: { $0.lowercased() == word.lowercased() }) { return best.0 }
    return nil
}
