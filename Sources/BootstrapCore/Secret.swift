/// A value that must never be shown: bootstrap tokens, certificate keys, passwords.
///
/// `description`, `debugDescription` and string interpolation print `<redacted>`. The only way to the
/// plain text is `revealed`, which callers use when they hand the value to a remote command or write
/// it to the state file. `Codable` stores the plain text (the state file is 0600).
public struct Secret: Sendable, Hashable, Codable, CustomStringConvertible, CustomDebugStringConvertible {
    public let revealed: String

    public init(_ value: String) { self.revealed = value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }

    public init(from decoder: Decoder) throws {
        self.revealed = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(revealed)
    }
}

/// Replaces every occurrence of the given secrets in `text` with `<redacted>`.
public func redact(_ text: String, _ secrets: [Secret]) -> String {
    var out = text
    for s in secrets where !s.revealed.isEmpty {
        out = out.replacingOccurrences(of: s.revealed, with: "<redacted>")
    }
    return out
}
