import Crypto
import Foundation

public enum Hashing {
    /// Lower-case hex SHA-256 of the UTF-8 bytes of `text`.
    public static func sha256(_ text: String) -> String { sha256(Data(text.utf8)) }

    public static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// Hash of several labelled inputs; order and labels both count.
    public static func inputs(_ parts: [(String, String)]) -> String {
        sha256(parts.map { "\($0.0)=\($0.1)" }.joined(separator: "\n"))
    }
}
