import Foundation
import Glibc

/// Asks for a key's passphrase on the terminal, without echo: the CLI's side of `SSHTransport.Options.passphrase`.
/// One prompt per key file per process. Runs on the asking session's own thread (never the cooperative pool);
/// nil when stdin is not a terminal.
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
