#if canImport(Glibc)
import Glibc
#endif
import BootstrapCore
import BootstrapEngine
import CLibSSH2
import Foundation

/// The key a server offered, with the names OpenSSH uses for it.
struct HostKey {
    var blob: Data
    var libssh2Type: Int32

    /// `ED25519`, `ECDSA`, `RSA`: how OpenSSH names the key type in messages.
    var displayType: String {
        switch libssh2Type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: return "RSA"
        case LIBSSH2_HOSTKEY_TYPE_DSS: return "DSA"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
            return "ECDSA"
        case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ED25519"
        default: return "unknown"
        }
    }

    /// The key type as written in known_hosts (`ssh-ed25519`, …).
    var sshName: String {
        switch libssh2Type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa"
        case LIBSSH2_HOSTKEY_TYPE_DSS: return "ssh-dss"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521"
        case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519"
        default: return "unknown"
        }
    }

    /// The bits `libssh2_knownhost_checkp` wants for this key type.
    var knownHostTypeMask: Int32 {
        switch libssh2Type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA
        case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521
        case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519
        default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN
        }
    }

    var fingerprint: String { Fingerprint.sha256(blob) }
}

public enum Fingerprint {
    /// `SHA256:` + unpadded base64 of the SHA-256 of the raw key blob, as `ssh-keygen -l` prints it.
    public static func sha256(_ blob: Data) -> String {
        let hex = Array(Hashing.sha256(blob).utf8)
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        var i = 0
        while i + 1 < hex.count {
            bytes.append(UInt8(hexValue(hex[i]) << 4 | hexValue(hex[i + 1])))
            i += 2
        }
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return "SHA256:" + text
    }

    private static func hexValue(_ c: UInt8) -> Int {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
        default: return Int(c - UInt8(ascii: "a")) + 10
        }
    }
}

/// Host key verification against an OpenSSH known_hosts file.
enum KnownHosts {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var warnedOff: Set<String> = []

    enum Outcome {
        case revoked
        case match
        case mismatch(expected: String?)
        case notFound
    }

    static func verify(session: OpaquePointer, endpoint: HostEndpoint, notice: @Sendable (String) -> Void) throws {
        var length = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(session, &length, &type) else {
            throw SSHError(.handshake, host: endpoint.label,
                           message: "host \(endpoint.label): the server offered no host key")
        }
        let key = HostKey(blob: Data(bytes: raw, count: length), libssh2Type: type)
        let path = endpoint.knownHostsPath

        if endpoint.hostKeyPolicy == .off {
            lock.lock()
            let first = warnedOff.insert(endpoint.label).inserted
            lock.unlock()
            if first {
                notice("warning: host key checking is off for \(endpoint.label); accepting its \(key.displayType) "
                    + "key \(key.fingerprint) without verification")
            }
            return
        }

        lock.lock()
        defer { lock.unlock() }
        switch try check(session: session, endpoint: endpoint, key: key) {
        case .revoked:
            throw SSHError(.hostKeyChanged, host: endpoint.label,
                           message: "host \(endpoint.label): the \(key.displayType) key offered (\(key.fingerprint)) is "
                               + "marked @revoked in \(path). Refusing to connect")
        case .match:
            return
        case .mismatch(let expected):
            throw SSHError(
                .hostKeyChanged, host: endpoint.label,
                message: "host \(endpoint.label): REMOTE HOST IDENTIFICATION HAS CHANGED. The \(key.displayType) key "
                    + "offered has fingerprint \(key.fingerprint), but \(path) expects "
                    + "\(expected ?? "a different key"). Refusing to connect (host key policy "
                    + "\(endpoint.hostKeyPolicy.rawValue)). If the host was really reinstalled, remove the old "
                    + "entry with: ssh-keygen -f \(Shell.quote(path)) -R \(Shell.quote(knownHostsName(endpoint)))")
        case .notFound:
            if endpoint.hostKeyPolicy == .strict {
                throw SSHError(
                    .hostKeyUnknown, host: endpoint.label,
                    message: "host \(endpoint.label): host key is not known. The \(key.displayType) key offered has "
                        + "fingerprint \(key.fingerprint) and \(path) has no entry for "
                        + "\(knownHostsName(endpoint)). Refusing to connect (host key policy strict); verify the "
                        + "fingerprint and add the key to \(path), or use host key policy accept-new")
            }
            try append(key: key, endpoint: endpoint)
            notice("added \(key.displayType) host key \(key.fingerprint) for \(knownHostsName(endpoint)) to \(path)")
        }
    }

    /// `addr` for port 22, else `[addr]:port`: the name OpenSSH writes in known_hosts.
    static func knownHostsName(_ endpoint: HostEndpoint) -> String {
        endpoint.port == 22 ? endpoint.address : "[\(endpoint.address)]:\(endpoint.port)"
    }

    static func check(session: OpaquePointer, endpoint: HostEndpoint, key: HostKey) throws -> Outcome {
        guard let hosts = libssh2_knownhost_init(session) else {
            throw SSHError(.knownHosts, host: endpoint.label, message: "host \(endpoint.label): libssh2 could not "
                + "allocate a known-hosts collection")
        }
        defer { libssh2_knownhost_free(hosts) }
        let path = endpoint.knownHostsPath
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SSHError(.knownHosts, host: endpoint.label,
                               message: "host \(endpoint.label): cannot read known hosts file \(path)")
            }
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("@revoked") {
                    // `@revoked PATTERNS TYPE BASE64`: this key is refused whatever host offers it.
                    let fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
                    if fields.count >= 4, Data(base64Encoded: String(fields[3])) == key.blob {
                        return .revoked
                    }
                    continue
                }
                if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix("@") { continue }
                // Lines libssh2 cannot parse (other key types) are skipped, as OpenSSH does.
                _ = trimmed.withCString {
                    libssh2_knownhost_readline(hosts, $0, strlen($0), LIBSSH2_KNOWNHOST_FILE_OPENSSH)
                }
            }
        }
        var found: UnsafeMutablePointer<libssh2_knownhost>?
        let mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key.knownHostTypeMask
        let rc = key.blob.withUnsafeBytes { raw in
            libssh2_knownhost_checkp(hosts, endpoint.address, Int32(endpoint.port),
                                     raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count, mask, &found)
        }
        switch rc {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            return .match
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            var expected: String?
            if let entry = found, let base64 = entry.pointee.key,
               let blob = Data(base64Encoded: String(cString: base64)) {
                expected = Fingerprint.sha256(blob)
            }
            return .mismatch(expected: expected)
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
            return .notFound
        default:
            throw SSHError(.knownHosts, host: endpoint.label,
                           message: "host \(endpoint.label): checking the host key against \(path) failed")
        }
    }

    /// Appends one entry under an exclusive lock on the file (other processes may be adding too).
    static func append(key: HostKey, endpoint: HostEndpoint) throws {
        let path = endpoint.knownHostsPath
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SSHError(.knownHosts, host: endpoint.label,
                           message: "host \(endpoint.label): cannot add the host key to \(path): \(Net.errnoText())")
        }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        // Start on a new line if the file does not end with one.
        var prefix = ""
        let size = lseek(fd, 0, SEEK_END)
        if size > 0 {
            let reader = open(path, O_RDONLY | O_CLOEXEC)
            if reader >= 0 {
                var last: UInt8 = 0
                if pread(reader, &last, 1, size - 1) == 1, last != 0x0A { prefix = "\n" }
                close(reader)
            }
        }
        let line = prefix + "\(knownHostsName(endpoint)) \(key.sshName) \(key.blob.base64EncodedString())\n"
        let ok = line.withCString { write(fd, $0, strlen($0)) } == line.utf8.count
        if !ok {
            throw SSHError(.knownHosts, host: endpoint.label,
                           message: "host \(endpoint.label): cannot add the host key to \(path): \(Net.errnoText())")
        }
    }
}
