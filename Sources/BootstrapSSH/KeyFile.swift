#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What we need to know about a private key file before handing it to libssh2.
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

    /// Whether the key is protected by a passphrase (OpenSSH format: cipher other than `none`; PEM:
    /// `ENCRYPTED` header). Unreadable or unknown formats count as not encrypted: libssh2 will report them.
    static func isEncrypted(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
            guard let bytes = openSSHBody(text) else { return false }
            var reader = Reader(bytes: bytes, offset: 15)
            guard let cipher = reader.string() else { return false }
            return String(decoding: cipher, as: UTF8.self) != "none"
        }
        return text.contains("ENCRYPTED")
    }
}

/// Asks for a passphrase on the terminal, without echo. One prompt per key file per process.
enum PassphrasePrompt {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [String: String] = [:]

    static func ask(for keyPath: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        if let known = cache[keyPath] { return known }
        guard isatty(STDIN_FILENO) == 1 else { return nil }
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { return nil }
        defer { close(tty) }
        let prompt = "Enter passphrase for key \(keyPath): "
        _ = prompt.withCString { write(tty, $0, strlen($0)) }
        var saved = termios()
        let haveTermios = tcgetattr(tty, &saved) == 0
        if haveTermios {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(tty, TCSAFLUSH, &quiet)
        }
        var bytes: [UInt8] = []
        var c: UInt8 = 0
        while read(tty, &c, 1) == 1, c != 0x0A, c != 0x0D { bytes.append(c) }
        if haveTermios { tcsetattr(tty, TCSAFLUSH, &saved) }
        _ = "\n".withCString { write(tty, $0, 1) }
        let value = String(decoding: bytes, as: UTF8.self)
        cache[keyPath] = value
        return value
    }
}
