#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What we need to know about a private key file before handing it to libssh2.
enum KeyFile {
    /// Whether the key is protected by a passphrase (OpenSSH format: cipher other than `none`; PEM:
    /// `ENCRYPTED` header). Unreadable or unknown formats count as not encrypted: libssh2 will report them.
    static func isEncrypted(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        let begin = "-----BEGIN OPENSSH PRIVATE KEY-----"
        let end = "-----END OPENSSH PRIVATE KEY-----"
        if let b = text.range(of: begin), let e = text.range(of: end, range: b.upperBound..<text.endIndex) {
            let body = text[b.upperBound..<e.lowerBound].filter { !$0.isWhitespace }
            guard let data = Data(base64Encoded: String(body)) else { return false }
            let bytes = [UInt8](data)
            let magic = Array("openssh-key-v1".utf8) + [0]
            guard bytes.count > magic.count + 4, Array(bytes.prefix(magic.count)) == magic else { return false }
            var i = magic.count
            let len = bytes[i..<i + 4].reduce(0) { $0 << 8 | Int($1) }
            i += 4
            guard i + len <= bytes.count else { return false }
            let cipher = String(decoding: bytes[i..<i + len], as: UTF8.self)
            return cipher != "none"
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
