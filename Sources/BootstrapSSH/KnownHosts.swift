import Glibc
import BootstrapCore
import BootstrapTransport
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
        var text = Hashing.sha256Digest(blob).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return "SHA256:" + text
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
        /// No entry of the offered key's type, but entries of these other types: the host offered none of
        /// the keys known_hosts vouches for (they were preferred in the handshake).
        case otherTypesKnown([String])
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
        case .otherTypesKnown(let types):
            // Under accept-new too: adding a key of another type to a host with known keys would trust
            // whatever now answers at its address.
            throw SSHError(
                .hostKeyChanged, host: endpoint.label,
                message: "host \(endpoint.label): \(path) has \(types.joined(separator: " and ")) host key(s) for "
                    + "\(knownHostsName(endpoint)), but the server offered none of them, only a \(key.displayType) key "
                    + "(\(key.fingerprint))\(rsaHint(types: types)). Refusing to connect (host key policy "
                    + "\(endpoint.hostKeyPolicy.rawValue)). "
                    + "If the host really changed its keys, remove the old entry with: ssh-keygen -f "
                    + "\(Shell.quote(path)) -R \(Shell.quote(knownHostsName(endpoint)))")
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

    /// The known_hosts entries as a libssh2 collection (free it with `libssh2_knownhost_free`), and the
    /// `@revoked` keys, which libssh2 does not read.
    private static func load(session: OpaquePointer, endpoint: HostEndpoint) throws
        -> (hosts: OpaquePointer, revoked: [Data])
    {
        guard let hosts = libssh2_knownhost_init(session) else {
            throw SSHError(.knownHosts, host: endpoint.label, message: "host \(endpoint.label): libssh2 could not "
                + "allocate a known-hosts collection")
        }
        var revoked: [Data] = []
        let path = endpoint.knownHostsPath
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                libssh2_knownhost_free(hosts)
                throw SSHError(.knownHosts, host: endpoint.label,
                               message: "host \(endpoint.label): cannot read known hosts file \(path)")
            }
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("@revoked") {
                    // `@revoked PATTERNS TYPE BASE64`: this key is refused whatever host offers it.
                    let fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
                    if fields.count >= 4, let blob = Data(base64Encoded: String(fields[3])) { revoked.append(blob) }
                    continue
                }
                if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix("@") { continue }
                // Lines libssh2 cannot parse (other key types) are skipped, as OpenSSH does.
                _ = trimmed.withCString {
                    libssh2_knownhost_readline(hosts, $0, strlen($0), LIBSSH2_KNOWNHOST_FILE_OPENSSH)
                }
            }
        }
        return (hosts, revoked)
    }

    /// The key types (`LIBSSH2_KNOWNHOST_KEY_*`) known_hosts holds for this host, asked of libssh2 itself so
    /// that plain, `[host]:port` and hashed names match exactly as they do when the key is checked: a probe
    /// key of each type that is "mismatched" means an entry of that type exists.
    private static func knownTypes(_ hosts: OpaquePointer, endpoint: HostEndpoint) -> Set<Int32> {
        let probe: [CChar] = [0]
        var out: Set<Int32> = []
        for type in keyTypes {
            let mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | type
            var found: UnsafeMutablePointer<libssh2_knownhost>?
            let rc = libssh2_knownhost_checkp(hosts, endpoint.address, Int32(endpoint.port), probe, 1, mask, &found)
            if rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH || rc == LIBSSH2_KNOWNHOST_CHECK_MATCH { out.insert(type) }
        }
        return out
    }

    private static let keyTypes: [Int32] = [
        LIBSSH2_KNOWNHOST_KEY_ED25519, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
        LIBSSH2_KNOWNHOST_KEY_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_SSHRSA, LIBSSH2_KNOWNHOST_KEY_SSHDSS,
    ]

    /// OpenSSH's names for key types in messages.
    static func displayName(knownType: Int32) -> String {
        switch knownType {
        case LIBSSH2_KNOWNHOST_KEY_ED25519: return "ED25519"
        case LIBSSH2_KNOWNHOST_KEY_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_521:
            return "ECDSA"
        case LIBSSH2_KNOWNHOST_KEY_SSHRSA: return "RSA"
        case LIBSSH2_KNOWNHOST_KEY_SSHDSS: return "DSA"
        default: return "unknown"
        }
    }

    /// The known_hosts key type a host-key algorithm yields (nil for certificates and the unknown).
    static func knownType(ofAlgorithm name: String) -> Int32? {
        switch name {
        case "ssh-ed25519": return LIBSSH2_KNOWNHOST_KEY_ED25519
        case "ecdsa-sha2-nistp256": return LIBSSH2_KNOWNHOST_KEY_ECDSA_256
        case "ecdsa-sha2-nistp384": return LIBSSH2_KNOWNHOST_KEY_ECDSA_384
        case "ecdsa-sha2-nistp521": return LIBSSH2_KNOWNHOST_KEY_ECDSA_521
        case "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa": return LIBSSH2_KNOWNHOST_KEY_SSHRSA
        case "ssh-dss": return LIBSSH2_KNOWNHOST_KEY_SSHDSS
        default: return nil
        }
    }

    /// `supported` (libssh2's host-key algorithms, in its order) with the algorithms of the `known` key types
    /// first, as OpenSSH orders them: the server then offers a key known_hosts can vouch for whenever it has
    /// one. nil when nothing is known (libssh2's own order stays).
    static func preference(supported: [String], known: Set<Int32>) -> [String]? {
        guard !known.isEmpty else { return nil }
        let first = supported.filter { knownType(ofAlgorithm: $0).map(known.contains) ?? false }
        guard !first.isEmpty else { return nil }
        return first + supported.filter { !first.contains($0) }
    }

    /// Before the handshake: prefer the host-key algorithms of the key types known_hosts holds for this host
    /// (`libssh2_session_method_pref(LIBSSH2_METHOD_HOSTKEY)`). Without it libssh2 asks for ECDSA first and a
    /// host whose known key is ed25519 (what a plain `ssh` login records) would be refused under strict.
    static func preferKnownTypes(session: OpaquePointer, endpoint: HostEndpoint) throws {
        guard endpoint.hostKeyPolicy != .off else { return }
        lock.lock()
        let loaded = try? load(session: session, endpoint: endpoint)
        lock.unlock()
        guard let (hosts, _) = loaded else { return }  // an unreadable file is reported by `verify`
        let known = knownTypes(hosts, endpoint: endpoint)
        libssh2_knownhost_free(hosts)
        let supported = supportedAlgorithms(session)
        guard let order = preference(supported: supported, known: known) else { return }
        let rc = libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, order.joined(separator: ","))
        if rc != 0 {
            throw SSHError(.handshake, host: endpoint.label,
                           message: "host \(endpoint.label): libssh2 refused the host key preference "
                               + order.joined(separator: ","), code: rc)
        }
    }

    /// The host-key algorithms this libssh2 can verify, in its order of preference.
    static func supportedAlgorithms(_ session: OpaquePointer) -> [String] {
        var algs: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        let count = libssh2_session_supported_algs(session, LIBSSH2_METHOD_HOSTKEY, &algs)
        guard count > 0, let algs else { return [] }
        defer { libssh2_free(session, algs) }
        return (0..<Int(count)).compactMap { algs[$0].map { String(cString: $0) } }
    }

    /// Why a known RSA key may not be usable: libssh2 before 1.11 verifies RSA host keys only with SHA-1
    /// `ssh-rsa`, which OpenSSH 8.8 and later no longer offers.
    static let canVerifyRSAWithSHA2: Bool = {
        LibSSH2.initialise()
        guard let s = bs_session_init() else { return false }
        defer { libssh2_session_free(s) }
        return supportedAlgorithms(s).contains("rsa-sha2-256")
    }()

    static func rsaHint(types: [String]) -> String {
        guard types.contains("RSA"), !canVerifyRSAWithSHA2 else { return "" }
        return " (this libssh2 verifies RSA host keys only with SHA-1 ssh-rsa, which OpenSSH 8.8 and later servers "
            + "no longer offer: add the host's ED25519 or ECDSA key to known_hosts, after checking its fingerprint)"
    }

    static func check(session: OpaquePointer, endpoint: HostEndpoint, key: HostKey) throws -> Outcome {
        let (hosts, revoked) = try load(session: session, endpoint: endpoint)
        defer { libssh2_knownhost_free(hosts) }
        let path = endpoint.knownHostsPath
        if revoked.contains(key.blob) { return .revoked }
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
            let others = knownTypes(hosts, endpoint: endpoint)
            return others.isEmpty ? .notFound : .otherTypesKnown(Set(others.map(displayName(knownType:))).sorted())
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
