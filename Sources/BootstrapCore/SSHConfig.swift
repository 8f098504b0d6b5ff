import Foundation

/// The part of OpenSSH's client configuration (`~/.ssh/config`, ssh_config(5)) that bootstrap uses: `Host`
/// blocks with their patterns, and HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile and
/// StrictHostKeyChecking. Read as OpenSSH reads it: keywords are case-insensitive, `Key value` or `Key=value`,
/// `#` comments, double-quoted values; a block applies when one of its patterns matches the host and none of
/// its `!` patterns does; for each keyword the first value obtained wins. Pure: the CLI reads the file.
public struct SSHConfig: Sendable, Hashable {
    /// One `Keyword value` line.
    public struct Option: Sendable, Hashable {
        /// The keyword, lower-cased (`hostname`, `identityfile`, …).
        public var key: String
        /// The arguments, unquoted; `value` is them joined by spaces.
        public var args: [String]
        public var line: Int
        public var value: String { args.joined(separator: " ") }
    }

    /// A `Host` block (the lines before the first `Host` form a block with the pattern `*`).
    public struct Block: Sendable, Hashable {
        public var patterns: [String]
        public var options: [Option]
        public var line: Int
    }

    public var path: String
    public var blocks: [Block]
    /// Lines bootstrap does not follow (`Match`, `Include`), said once each.
    public var warnings: [String]

    public init(path: String = "~/.ssh/config", blocks: [Block] = [], warnings: [String] = []) {
        self.path = path
        self.blocks = blocks
        self.warnings = warnings
    }

    /// The keywords bootstrap takes from the file.
    public static let keywords: Set<String> = ["hostname", "user", "port", "identityfile", "proxyjump",
                                               "userknownhostsfile", "stricthostkeychecking"]

    public static func parse(_ text: String, path: String = "~/.ssh/config") -> SSHConfig {
        var config = SSHConfig(path: path)
        var current = Block(patterns: ["*"], options: [], line: 0)
        // Inside a `Match` block nothing applies (bootstrap does not evaluate Match criteria).
        var inMatch = false
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = i + 1
            let words = Self.words(String(raw))
            guard let first = words.first else { continue }
            let key = first.lowercased()
            let args = Array(words.dropFirst())
            switch key {
            case "host":
                config.blocks.append(current)
                current = Block(patterns: args, options: [], line: lineNo)
                inMatch = false
            case "match":
                config.blocks.append(current)
                current = Block(patterns: [], options: [], line: lineNo)
                inMatch = true
                config.warnings.append("\(path):\(lineNo): Match blocks are not read; their options do not apply")
            case "include":
                config.warnings.append("\(path):\(lineNo): Include is not followed")
            default:
                guard !inMatch, keywords.contains(key), !args.isEmpty else { continue }
                current.options.append(Option(key: key, args: args, line: lineNo))
            }
        }
        config.blocks.append(current)
        config.blocks.removeAll { $0.options.isEmpty }
        return config
    }

    /// A line's words: `Key value`, `Key=value`, `Key = value`; double quotes group words; `#` at the start of
    /// a word starts a comment.
    static func words(_ line: String) -> [String] {
        let space: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        var rest = Substring(line).drop(while: space)
        guard let first = rest.first, first != "#" else { return [] }
        let key = rest.prefix { !space($0) && $0 != "=" }
        rest = rest.dropFirst(key.count).drop(while: space)
        if rest.first == "=" { rest = rest.dropFirst().drop(while: space) }
        var out = [String(key)]
        var word = ""
        var inWord = false, quoted = false
        for c in rest {
            if quoted {
                if c == "\"" { quoted = false } else { word.append(c) }
            } else if c == "\"" {
                quoted = true; inWord = true
            } else if space(c) {
                if inWord { out.append(word); word = ""; inWord = false }
            } else if c == "#" && !inWord {
                break
            } else {
                word.append(c); inWord = true
            }
        }
        if inWord { out.append(word) }
        return out
    }

    /// OpenSSH's pattern matching: `*` any run of characters, `?` one character, case-insensitive.
    public static func matches(_ host: String, pattern: String) -> Bool {
        let h = Array(host.lowercased()), p = Array(pattern.lowercased())
        var hi = 0, pi = 0
        var star = -1, mark = 0
        while hi < h.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == h[hi]) {
                hi += 1; pi += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi; mark = hi; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; hi = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// A `Host` line's patterns (each may be a comma-separated list): true when one positive pattern
    /// matches and no negated (`!`) one does.
    public static func matches(_ host: String, patterns: [String]) -> Bool {
        var positive = false
        for item in patterns.flatMap({ $0.split(separator: ",").map(String.init) }) {
            if item.hasPrefix("!") {
                if matches(host, pattern: String(item.dropFirst())) { return false }
            } else if matches(host, pattern: item) {
                positive = true
            }
        }
        return positive
    }

    /// A value from the file and the line that gave it.
    public struct Value: Sendable, Hashable {
        public var args: [String]
        public var line: Int
        public var value: String { args.joined(separator: " ") }
    }

    /// The first value of each keyword over the blocks that apply to `host`, as OpenSSH obtains them.
    public func values(for host: String) -> [String: Value] {
        var out: [String: Value] = [:]
        for block in blocks where Self.matches(host, patterns: block.patterns) {
            for o in block.options where out[o.key] == nil {
                out[o.key] = Value(args: o.args, line: o.line)
            }
        }
        return out
    }
}

/// Where an SSH setting came from, for `validate --show-defaults`.
public enum SSHSource: Sendable, Hashable, CustomStringConvertible {
    /// Written in the plan, at this field path.
    case plan(String)
    /// From the SSH client configuration, at file:line.
    case config(String)
    /// bootstrap's default (PlanDefaults).
    case defaulted

    public var description: String {
        switch self {
        case .plan(let path): return "plan \(path)"
        case .config(let place): return place
        case .defaulted: return "default"
        }
    }
}

/// The SSH settings one host is reached with, each with where it came from: the plan where it says something
/// explicitly, else `~/.ssh/config`, else bootstrap's defaults.
public struct SSHSettings: Sendable, Hashable {
    public struct Setting<T: Sendable & Hashable>: Sendable, Hashable {
        public var value: T
        public var source: SSHSource
    }

    /// The bastion: how to reach it (it shares the target's known hosts file and host key policy).
    public struct Jump: Sendable, Hashable {
        public var address: Setting<String>
        public var port: Setting<Int>
        public var user: Setting<String>
        public var keyPath: Setting<String>
    }

    /// The address to connect to: the plan's address, or the config's HostName for it.
    public var address: Setting<String>
    public var port: Setting<Int>
    public var user: Setting<String>
    /// Not yet `~`-expanded.
    public var keyPath: Setting<String>
    public var knownHosts: Setting<String>
    public var hostKeyPolicy: Setting<ClusterPlan.HostKeyPolicy>
    /// The host to jump through (one hop), resolved like a host of its own.
    public var bastion: Setting<Jump?>
    /// Notes for the user (an option bootstrap cannot follow), with their place.
    public var notes: [String]

    /// Resolves `host` (a plan host, or one only the state knows, given with its address and port).
    public static func resolve(plan: ClusterPlan, host: ClusterPlan.Host, config: SSHConfig?) -> SSHSettings {
        let index = plan.spec.hosts.firstIndex { $0.name == host.name }
        let hostPath = index.map { "spec.hosts[\($0)]" }
        let ssh = plan.spec.ssh
        let values = config?.values(for: host.address) ?? [:]
        var notes: [String] = []
        func place(_ v: SSHConfig.Value) -> SSHSource { .config("\(config?.path ?? "ssh config"):\(v.line)") }

        func pick<T>(hostValue: T?, field: String, planValue: T, configKey: String,
                     _ convert: (String) -> T?) -> Setting<T> {
            pickArgs(hostValue: hostValue, field: field, planValue: planValue, configKey: configKey) { convert($0.joined(separator: " ")) }
        }
        func pickArgs<T>(hostValue: T?, field: String, planValue: T, configKey: String,
                         _ convert: ([String]) -> T?) -> Setting<T> {
            if let v = hostValue, let hostPath { return Setting(value: v, source: .plan("\(hostPath).\(field)")) }
            if let v = hostValue { return Setting(value: v, source: .plan("state")) }
            if ssh.explicit.contains(field) { return Setting(value: planValue, source: .plan("spec.ssh.\(field)")) }
            if let c = values[configKey] {
                if let v = convert(c.args) { return Setting(value: v, source: place(c)) }
                notes.append("\(place(c)): \(configKey) \(c.value) is not understood; using \(planValue)")
            }
            return Setting(value: planValue, source: .defaulted)
        }

        var address = Setting(value: host.address, source: .plan(hostPath.map { "\($0).address" } ?? "state"))
        if let h = values["hostname"] {
            address = Setting(value: Self.expandTokens(h.value, host: host.address, user: nil), source: place(h))
        }
        let port = pick(hostValue: host.port, field: "port", planValue: ssh.port, configKey: "port") {
            Int($0).flatMap { (1...65535).contains($0) ? $0 : nil }
        }
        let user = pick(hostValue: host.user, field: "user", planValue: ssh.user, configKey: "user") { $0 }
        let key = pick(hostValue: host.keyPath, field: "keyPath", planValue: ssh.keyPath, configKey: "identityfile") {
            Self.expandTokens($0, host: address.value, user: user.value)
        }
        let known = pickArgs(hostValue: nil, field: "knownHosts", planValue: ssh.knownHosts,
                             configKey: "userknownhostsfile") {
            // Several files may be listed; the first is the one bootstrap reads and adds to.
            $0.first.map { Self.expandTokens($0, host: address.value, user: user.value) }
        }
        let policy = pick(hostValue: nil, field: "hostKeyPolicy", planValue: ssh.hostKeyPolicy,
                          configKey: "stricthostkeychecking") { v -> ClusterPlan.HostKeyPolicy? in
            switch v.lowercased() {
            case "yes", "ask": return .strict  // no prompt: an unknown host is refused, as with yes
            case "accept-new": return .acceptNew
            case "no", "off": return .off
            default: return nil
            }
        }

        var bastion: Setting<Jump?>
        if let b = ssh.bastion {
            let jump = Jump(address: Setting(value: b.address, source: .plan("spec.ssh.bastion.address")),
                            port: Setting(value: b.port, source: .plan("spec.ssh.bastion.port")),
                            user: Setting(value: b.user, source: .plan("spec.ssh.bastion.user")),
                            keyPath: Setting(value: b.keyPath, source: .plan("spec.ssh.bastion.keyPath")))
            bastion = Setting(value: jump, source: .plan("spec.ssh.bastion"))
        } else if let j = values["proxyjump"], j.value.lowercased() != "none" {
            let hops = j.value.split(separator: ",")
            if hops.count > 1 {
                notes.append("\(place(j)): ProxyJump has \(hops.count) hops; bootstrap uses the first only")
            }
            if let target = Self.parseJump(String(hops[0])) {
                // The jump host is itself looked up in the config, as ssh does; what ProxyJump names wins. Its
                // own ProxyJump is not followed (one hop).
                let jumpHost = ClusterPlan.Host(name: "bastion", address: target.host, role: .worker,
                                                port: target.port, user: target.user)
                var jumpPlan = plan
                jumpPlan.spec.ssh.bastion = nil
                let noJumps = config.map { c -> SSHConfig in
                    var c = c
                    for i in c.blocks.indices { c.blocks[i].options.removeAll { $0.key == "proxyjump" } }
                    return c
                }
                let r = resolve(plan: jumpPlan, host: jumpHost, config: noJumps)
                notes += r.notes
                var jump = Jump(address: r.address, port: r.port, user: r.user, keyPath: r.keyPath)
                if target.user != nil { jump.user.source = place(j) }
                if target.port != nil { jump.port.source = place(j) }
                if r.address.source == .plan("state") { jump.address.source = place(j) }
                bastion = Setting(value: jump, source: place(j))
            } else {
                notes.append("\(place(j)): ProxyJump \(j.value) is not [user@]host[:port]; no bastion is used")
                bastion = Setting(value: nil, source: .defaulted)
            }
        } else {
            bastion = Setting(value: nil, source: values["proxyjump"].map(place) ?? .defaulted)
        }
        return SSHSettings(address: address, port: port, user: user, keyPath: key, knownHosts: known,
                           hostKeyPolicy: policy, bastion: bastion, notes: notes)
    }

    /// `[user@]host[:port]`, or an `ssh://[user@]host[:port]` URI.
    static func parseJump(_ text: String) -> (user: String?, host: String, port: Int?)? {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if rest.hasPrefix("ssh://") { rest = rest.dropFirst(6) }
        var user: String?
        if let at = rest.lastIndex(of: "@") {
            user = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        var port: Int?
        if rest.hasPrefix("[") , let close = rest.firstIndex(of: "]") {  // [host]:port
            let host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { port = Int(after.dropFirst()); if port == nil { return nil } }
            return host.isEmpty ? nil : (user, String(host), port)
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let p = Int(rest[rest.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            rest = rest[..<colon]
        }
        guard !rest.isEmpty, user.map({ !$0.isEmpty }) ?? true else { return nil }
        return (user, String(rest), port)
    }

    /// ssh_config's tokens in IdentityFile, UserKnownHostsFile and HostName: `%h` the host, `%r` the remote
    /// user, `%%` a percent sign (`%d`, the home directory, is written `~`, which the CLI expands).
    static func expandTokens(_ text: String, host: String, user: String?) -> String {
        var out = ""
        var percent = false
        for c in text {
            if percent {
                switch c {
                case "h": out += host
                case "r": out += user ?? "%r"
                case "d": out += "~"
                case "%": out += "%"
                default: out += "%\(c)"
                }
                percent = false
            } else if c == "%" {
                percent = true
            } else {
                out.append(c)
            }
        }
        if percent { out += "%" }
        return out
    }
}

extension SSHSettings {
    /// YAML comment lines saying how `host` will be reached and where each value came from, for
    /// `validate --show-defaults`.
    public func describe(host: String) -> String {
        func row(_ key: String, _ value: String, _ source: SSHSource) -> String {
            let left = "#     \(key): \(value)"
            return left.padding(toLength: max(left.count + 2, 44), withPad: " ", startingAt: 0) + "<- \(source)\n"
        }
        var out = "#   \(host):\n"
        out += row("address", address.value, address.source)
        out += row("port", String(port.value), port.source)
        out += row("user", user.value, user.source)
        out += row("keyPath", keyPath.value, keyPath.source)
        out += row("knownHosts", knownHosts.value, knownHosts.source)
        out += row("hostKeyPolicy", hostKeyPolicy.value.rawValue, hostKeyPolicy.source)
        if let b = bastion.value {
            out += row("bastion", "\(b.user.value)@\(b.address.value):\(b.port.value) key \(b.keyPath.value)", bastion.source)
        } else {
            out += row("bastion", "none", bastion.source)
        }
        return out
    }
}
