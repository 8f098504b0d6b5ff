import Foundation

/// What the RSA hint of a failed authentication needs to know about a private key file: its type. Whether a key
/// is encrypted is libssh2's to say (see `Connection.authenticate`).
enum KeyFile {
    /// The key's type as OpenSSH names it (`ssh-ed25519`, `ssh-rsa`, …), from `PATH.pub` or the private key.
    static func keyType(_ path: String) -> String? {
        if let pub = try? String(contentsOfFile: path + ".pub", encoding: .utf8),
           let first = pub.split(separator: " ").first {
            return String(first)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        if text.contains("BEGIN RSA PRIVATE KEY") { return "ssh-rsa" }
        if text.contains("BEGIN EC PRIVATE KEY") { return "ecdsa-sha2" }
        // Neither libssh2 1.10 nor swift-crypto reads an OpenSSH private key's type, so its (unencrypted)
        // public part is read here: magic, cipher, kdf, kdf options, key count, then the public key blob.
        guard let bytes = openSSHBody(text) else { return nil }
        var reader = Reader(bytes: bytes, offset: 15)
        guard reader.string() != nil, reader.string() != nil, reader.string() != nil, reader.uint32() != nil,
              let blob = reader.string() else { return nil }
        var inner = Reader(bytes: blob, offset: 0)
        return inner.string().map { String(decoding: $0, as: UTF8.self) }
    }

    private static func openSSHBody(_ text: String) -> [UInt8]? {
        let begin = "-----BEGIN OPENSSH PRIVATE KEY-----"
        let end = "-----END OPENSSH PRIVATE KEY-----"
        guard let b = text.range(of: begin), let e = text.range(of: end, range: b.upperBound..<text.endIndex) else {
            return nil
        }
        let body = text[b.upperBound..<e.lowerBound].filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else { return nil }
        let bytes = [UInt8](data)
        guard bytes.count > 15, Array(bytes.prefix(15)) == Array("openssh-key-v1".utf8) + [0] else { return nil }
        return bytes
    }

    private struct Reader {
        var bytes: [UInt8]
        var offset: Int

        mutating func uint32() -> Int? {
            guard offset + 4 <= bytes.count else { return nil }
            let value = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            offset += 4
            return value
        }

        mutating func string() -> [UInt8]? {
            guard let length = uint32(), offset + length <= bytes.count else { return nil }
            defer { offset += length }
            return Array(bytes[offset..<offset + length])
        }
    }
}
