/// The one place where values become shell text.
///
/// Every remote command is built from typed values through `Shell.quote` / `ShellCommand`; plan values
/// never reach a shell unquoted.
public enum Shell {
    /// POSIX single-quote quoting. Words made only of safe characters are left bare for readability.
    public static func quote(_ word: String) -> String {
        if !word.isEmpty, word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Quotes each word and joins them with spaces.
    public static func join(_ argv: [String]) -> String { argv.map(quote).joined(separator: " ") }

    private static let safe: Set<Unicode.Scalar> = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%".unicodeScalars
    )
}

/// A command to run on a host: shell text made from quoted words, whether it needs root, and the secrets
/// it carries (so that logs and errors can redact them).
///
/// A script of several commands is built from `Step`s, so that a failure names the command that failed:
/// before each step the script records its number, and on a non-zero exit it reports the number of the
/// step it was in on stderr (`failedStep(in:)` reads and removes that line).
public struct ShellCommand: Sendable, Hashable, CustomStringConvertible {
    /// One command of a script (it may span lines: `if … fi`), and how a failure names it.
    public struct Step: Sendable, Hashable {
        public var script: String
        public var name: String

        public init(_ script: String, name: String? = nil) {
            self.script = script
            self.name = name ?? script
        }
    }

    /// The shell text sent to the host, already quoted.
    public var script: String
    /// The shell text as logs show it: for a script of steps, the steps without the bookkeeping.
    public var shown: String
    /// How a failure names each step (empty for a single command or plain shell text).
    public var stepNames: [String]
    /// Run as root (through `sudo -n` when the SSH user is not root).
    public var privileged: Bool
    /// Values that appear in `script` and must be redacted wherever the command is shown.
    public var secrets: [Secret]
    /// What the command does, for messages, when the script's text does not say it in its first line (a
    /// guarded command's script starts with its wrapper).
    public var label: String?
    /// Run again, a few times with a growing pause, when it fails with an error of the API server that a repeat
    /// of the same request gets past (`TransientAPIError`). Only for requests that may be repeated (kubectl's
    /// label, taint, drain, delete --ignore-not-found, get…).
    public var retriesTransientAPIErrors = false

    /// A single program with its arguments; every word is quoted.
    public init(_ argv: [String], privileged: Bool = true, secrets: [Secret] = []) {
        self.init(script: Shell.join(argv), privileged: privileged, secrets: secrets)
    }

    /// Shell text assembled by the caller from `Shell.quote`d pieces (pipes, `&&`, redirections).
    public init(script: String, privileged: Bool = true, secrets: [Secret] = []) {
        self.script = script
        self.shown = script
        self.stepNames = []
        self.privileged = privileged
        self.secrets = secrets
    }

    /// A script of steps, run in order. `stopOnError`: `set -e` (the first failing step ends the script).
    /// `cleanup` runs when the script ends, however it ends (instead of a `trap … EXIT`, which is taken).
    public init(steps: [Step], stopOnError: Bool = true, cleanup: String? = nil, privileged: Bool = true,
                secrets: [Secret] = []) {
        var lines = stopOnError ? ["set -e"] : []
        let clean = cleanup.map { "{ \($0); } >/dev/null 2>&1 || true; " } ?? ""
        lines.append("bs_exit() { bs_rc=$?; \(clean)[ \"$bs_rc\" -eq 0 ] || "
            + "printf '\(ShellCommand.stepMarker)%s@@\\n' \"$bs_step\" >&2; }")
        lines.append("trap bs_exit EXIT")
        for (i, step) in steps.enumerated() { lines.append("bs_step=\(i); \(step.script)") }
        self.script = lines.joined(separator: "\n")
        self.shown = ((stopOnError ? ["set -e"] : []) + steps.map(\.script)).joined(separator: "\n")
        self.stepNames = steps.map(\.name)
        self.privileged = privileged
        self.secrets = secrets
    }

    public init(steps: [String], stopOnError: Bool = true, cleanup: String? = nil, privileged: Bool = true,
                secrets: [Secret] = []) {
        self.init(steps: steps.map { Step($0) }, stopOnError: stopOnError, cleanup: cleanup, privileged: privileged,
                  secrets: secrets)
    }

    /// What a script of steps prints on stderr when it fails: the marker, the step's number, `@@`.
    public static let stepMarker = "@@bootstrap-failed-step:"

    /// The step a failed script reported in `stderr` (nil when none did), and `stderr` without that report.
    public func failedStep(in stderr: String) -> (step: String?, stderr: String) {
        guard let start = stderr.range(of: ShellCommand.stepMarker, options: .backwards) else { return (nil, stderr) }
        let rest = stderr[start.upperBound...]
        guard let end = rest.range(of: "@@") else { return (nil, stderr) }
        var after = end.upperBound
        if after < stderr.endIndex, stderr[after] == "\n" { after = stderr.index(after: after) }
        let cleaned = String(stderr[..<start.lowerBound]) + String(stderr[after...])
        guard let i = Int(rest[..<end.lowerBound]), stepNames.indices.contains(i) else { return (nil, cleaned) }
        return (stepNames[i], cleaned)
    }

    /// A line of remote output without the failure report (nil when nothing else was on it).
    public static func withoutStepReport(_ line: String) -> String? {
        guard let r = line.range(of: stepMarker) else { return line }
        let before = String(line[..<r.lowerBound])
        return before.isEmpty ? nil : before
    }

    /// The command as it may be shown to a person or written to a log.
    public var description: String { redact(shown, secrets) }
}

extension ShellCommand.Step: ExpressibleByStringInterpolation {
    public init(stringLiteral value: String) { self.init(value) }
}

/// Errors of the Kubernetes API server that last a moment: etcd without a leader or quorum while a member joins,
/// leaves or is promoted, the API server restarting (an upgrade replaces its static pod) or shedding load. kubectl
/// gives up at once on them; kubeadm and the controllers repeat the request, and so does a command with
/// `retriesTransientAPIErrors`.
public enum TransientAPIError {
    /// What kubectl prints for them (its own text, or the API server's message it passes on).
    public static let markers = [
        "etcdserver: request timed out", "etcdserver: leader changed", "etcdserver: no leader",
        "etcdserver: too many requests", "the server is currently unable to handle the request",
        "was refused - did you specify the right host or port?", "net/http: TLS handshake timeout",
        "http2: client connection lost",
    ]
    /// How many times a command runs at most, and the pause before each repeat (0.5 s, doubling: 15.5 s in all).
    public static let attempts = 6
    public static func pause(beforeAttempt n: Int) -> Double { 0.5 * Double(1 << max(0, min(n - 2, 5))) }

    /// The line of `stderr` that says the error was one of these (nil when it was something else).
    public static func reason(in stderr: String) -> String? {
        stderr.split(separator: "\n").last { line in markers.contains { line.contains($0) } }
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
