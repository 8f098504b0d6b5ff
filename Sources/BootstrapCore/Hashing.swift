import Crypto
import Foundation

public enum Hashing {
    /// Lower-case hex SHA-256 of the UTF-8 bytes of `text`.
    public static func sha256(_ text: String) -> String { sha256(Data(text.utf8)) }

    public static func sha256(_ data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    private static let digits = Array("0123456789abcdef".utf8)

    /// Lower-case hex of `bytes` (hand-rolled: `String(format:)` per byte dominated `bootstrap plan` on big plans).
    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hash of several labelled inputs; order and labels both count.
    public static func inputs(_ parts: [(String, String)]) -> String {
        sha256(parts.map { "\($0.0)=\($0.1)" }.joined(separator: "\n"))
    }
}
