import Foundation
import Yams

/// A mapping node read with its field path: its values by key.
struct Fields {
    let path: String
    let node: Node
    let values: [String: Node]
}

struct Items {
    let path: String
    let items: [Node]
}

/// Walks YAML nodes, recording diagnostics (with line and column) and the location of every field.
final class NodeReader {
    var diagnostics: [Diagnostic] = []
    /// Field path → where its value starts.
    var locations: [String: SourceLocation] = [:]
    /// Paths already reported, so validation does not report them twice.
    var reported: Set<String> = []
    /// Unknown fields seen; past `PlanLoader.reportLimit` they are only counted in `omittedErrors` (no
    /// did-you-mean, no message): a file of 600,000 unknown keys is rejected in a second, not ten.
    var unknownFields = 0
    var omittedErrors = 0

    static func child(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    static func location(_ node: Node?) -> SourceLocation? {
        node?.mark.map { SourceLocation(line: $0.line, column: $0.column) }
    }

    func error(_ path: String, _ node: Node?, _ message: String, expected: String? = nil) {
        add(.error, path, node, message, expected)
    }

    func warning(_ path: String, _ node: Node?, _ message: String, expected: String? = nil) {
        add(.warning, path, node, message, expected)
    }

    private func add(_ s: Diagnostic.Severity, _ path: String, _ node: Node?, _ message: String, _ expected: String?) {
        let loc = NodeReader.location(node) ?? locations[path]
        diagnostics.append(Diagnostic(severity: s, path: path, line: loc?.line, column: loc?.column,
                                      message: message, expected: expected))
        if s == .error { reported.insert(path) }
    }

    static func tag(_ node: Node) -> String { node.tag.description }

    /// A plain `~`, `null` or empty scalar (checked directly: resolving tags is slow on big plans).
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.style == .plain else { return false }
        switch s.string {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s):
            if isNull(node) { return "nothing" }
            let text = s.string.count > 40 ? String(s.string.prefix(40)) + "…" : s.string
            return "\"\(text)\""
        }
    }

    static func json(_ node: Node) -> JSONValue {
        switch node {
        case .mapping(let m):
            var o: [String: JSONValue] = [:]
            for (k, v) in m { o[k.string ?? "\(k)"] = json(v) }
            return .object(o)
        case .sequence(let s):
            return .array(s.map(json))
        case .scalar(let s):
            switch NodeReader.tag(node) {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSONValue.bool) ?? .string(s.string)
            case Tag.Name.int.rawValue: return node.int.map(JSONValue.int) ?? .string(s.string)
            case Tag.Name.float.rawValue: return node.float.map(JSONValue.double) ?? .string(s.string)
            default: return .string(s.string)
            }
        }
    }

    /// `node` as a mapping whose keys are checked against `schema` (unknown keys get a suggestion).
    func mapping(_ node: Node, _ path: String, schema: String) -> Fields? {
        guard case .mapping(let m) = node else {
            error(path, node, "expected a mapping, found \(NodeReader.describe(node))",
                  expected: (PlanLoader.schema[schema] ?? []).isEmpty ? nil
                      : "fields " + (PlanLoader.schema[schema] ?? []).joined(separator: ", "))
            return nil
        }
        let allowed = PlanLoader.schema[schema] ?? []
        var values: [String: Node] = [:]
        for (k, v) in m {
            guard case .scalar(let ks) = k else {
                error(path, k, "keys must be plain names, found \(NodeReader.describe(k))")
                continue
            }
            let key = ks.string
            let p = NodeReader.child(path, key)
            if values[key] != nil {
                error(p, k, "\"\(key)\" is given twice")
                continue
            }
            if !allowed.isEmpty && !allowed.contains(key) {
                unknownFields += 1
                if unknownFields > PlanLoader.reportLimit {
                    omittedErrors += 1
                    continue
                }
                let hint = didYouMean(key, among: allowed).map { "; did you mean \"\($0)\"?" } ?? ""
                let where_ = path.isEmpty ? "at the top level" : "in \(path)"
                error(p, k, "unknown field \"\(key)\" \(where_)\(hint)",
                      expected: "one of " + allowed.joined(separator: ", "))
                continue
            }
            values[key] = v
            if let loc = NodeReader.location(v) { locations[p] = loc }
        }
        if let loc = NodeReader.location(node), locations[path] == nil { locations[path] = loc }
        return Fields(path: path, node: node, values: values)
    }

    /// The value of `key`, or nil when absent or null (reporting it when required).
    func value(_ f: Fields, _ key: String, required: Bool, what: String) -> Node? {
        let p = NodeReader.child(f.path, key)
        guard let v = f.values[key], !NodeReader.isNull(v) else {
            if required {
                let present = f.values[key] != nil
                error(p, f.values[key] ?? f.node,
                      present ? "must not be empty" : "missing required field \"\(key)\"\(f.path.isEmpty ? "" : " in \(f.path)")",
                      expected: what)
            }
            return nil
        }
        return v
    }

    func mappingField(_ f: Fields, _ key: String, required: Bool = false, schema: String? = nil) -> Fields? {
        let p = NodeReader.child(f.path, key)
        let pattern = schema ?? p.replacingOccurrences(of: #"\[\d+\]"#, with: "[]", options: .regularExpression)
        guard let v = value(f, key, required: required, what: "a mapping") else { return nil }
        return mapping(v, p, schema: pattern)
    }

    func sequenceField(_ f: Fields, _ key: String, required: Bool = false) -> Items? {
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: required, what: "a list") else { return nil }
        guard case .sequence(let s) = v else {
            error(p, v, "expected a list, found \(NodeReader.describe(v))")
            return nil
        }
        for (i, item) in s.enumerated() {
            if let loc = NodeReader.location(item) { locations["\(p)[\(i)]"] = loc }
        }
        return Items(path: p, items: Array(s))
    }

    /// Any scalar reads as its text (so `version: 1.34` is checked as a version, not refused as a number).
    func string(_ f: Fields, _ key: String, required: Bool = false) -> String? {
        guard let v = value(f, key, required: required, what: "a string") else { return nil }
        return scalarText(v, NodeReader.child(f.path, key))
    }

    private func scalarText(_ v: Node, _ path: String) -> String? {
        guard case .scalar(let s) = v else {
            error(path, v, "expected a string, found \(NodeReader.describe(v))")
            return nil
        }
        return s.string
    }

    func int(_ f: Fields, _ key: String, required: Bool = false) -> Int? {
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: required, what: "an integer") else { return nil }
        guard case .scalar = v, NodeReader.tag(v) == Tag.Name.int.rawValue, let i = v.int else {
            error(p, v, "expected an integer, found \(NodeReader.describe(v))")
            return nil
        }
        return i
    }

    func bool(_ f: Fields, _ key: String, required: Bool = false) -> Bool? {
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: required, what: "true or false") else { return nil }
        guard case .scalar = v, NodeReader.tag(v) == Tag.Name.bool.rawValue, let b = v.bool else {
            error(p, v, "expected true or false, found \(NodeReader.describe(v))")
            return nil
        }
        return b
    }

    func enumValue<E: RawRepresentable & CaseIterable>(_ f: Fields, _ key: String, required: Bool = false) -> E?
        where E.RawValue == String
    {
        let options = E.allCases.map(\.rawValue)
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: required, what: "one of " + options.joined(separator: ", ")),
              let text = scalarText(v, p) else { return nil }
        if let e = E(rawValue: text) { return e }
        let hint = didYouMean(text, among: options).map { "; did you mean \"\($0)\"?" } ?? ""
        error(p, v, "\"\(text)\" is not a valid \(key)\(hint)", expected: "one of " + options.joined(separator: ", "))
        return nil
    }

    func stringList(_ f: Fields, _ key: String) -> [String]? {
        guard let items = sequenceField(f, key) else { return nil }
        var out: [String] = []
        for (i, n) in items.items.enumerated() {
            if let s = scalarText(n, "\(items.path)[\(i)]") { out.append(s) }
        }
        return out
    }

    func stringMap(_ f: Fields, _ key: String) -> [String: String]? {
        let p = NodeReader.child(f.path, key)
        guard let v = value(f, key, required: false, what: "a mapping") else { return nil }
        guard case .mapping(let m) = v else {
            error(p, v, "expected a mapping of strings, found \(NodeReader.describe(v))")
            return nil
        }
        var out: [String: String] = [:]
        for (k, val) in m {
            guard case .scalar(let ks) = k else {
                error(p, k, "keys must be strings, found \(NodeReader.describe(k))")
                continue
            }
            let cp = "\(p).\(ks.string)"
            if let loc = NodeReader.location(k) { locations[cp] = loc }
            if NodeReader.isNull(val) { out[ks.string] = ""; continue }
            if let s = scalarText(val, cp) { out[ks.string] = s }
        }
        return out
    }
}
