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
public struct ShellCommand: Sendable, Hashable, CustomStringConvertible {
    /// The shell text, already quoted.
    public var script: String
    /// Run as root (through `sudo -n` when the SSH user is not root).
    public var privileged: Bool
    /// Values that appear in `script` and must be redacted wherever the command is shown.
    public var secrets: [Secret]
    /// What the command does, for messages, when the script's text does not say it in its first line (a
    /// guarded command's script starts with its wrapper).
    public var label: String?

    /// A single program with its arguments; every word is quoted.
    public init(_ argv: [String], privileged: Bool = true, secrets: [Secret] = []) {
        self.script = Shell.join(argv)
        self.privileged = privileged
        self.secrets = secrets
    }

    /// Shell text assembled by the caller from `Shell.quote`d pieces (pipes, `&&`, redirections).
    public init(script: String, privileged: Bool = true, secrets: [Secret] = []) {
        self.script = script
        self.privileged = privileged
        self.secrets = secrets
    }

    /// The command as it may be shown to a person or written to a log.
    public var description: String { redact(script, secrets) }
}
