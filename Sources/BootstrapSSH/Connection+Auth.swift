import BootstrapCore
import BootstrapTransport
import CLibSSH2
import Foundation
import Glibc

// Authentication: key file (passphrase from a variable or the `Options.passphrase` provider), then ssh-agent.
extension Connection {
    // MARK: - Authentication

    func authenticate(_ connectDeadline: Deadline) throws {
        var deadline = connectDeadline
        guard let s = session else { throw closedError() }
        let user = endpoint.user
        var serverMethods = ""
        while true {
            if let list = libssh2_userauth_list(s, user, UInt32(user.utf8.count)) {
                serverMethods = String(cString: list)
                break
            }
            if libssh2_userauth_authenticated(s) != 0 { return }
            let err = libssh2_session_last_errno(s)
            if err != BS_EAGAIN { throw failure(.authentication, "asking for authentication methods", err) }
            try wait(deadline)
        }
        var tried: [String] = []

        if let keyPath = endpoint.keyPath {
            let description = "publickey file \(keyPath)"
            if !FileManager.default.fileExists(atPath: keyPath) {
                tried.append("\(description) (no such file)")
            } else {
                // libssh2 loads the key before it sends anything, so a key it cannot load without a passphrase
                // (an encrypted one) costs no round trip: then the provider is asked, and the key tried again.
                var passphrase = endpoint.passphraseEnvironment.flatMap { options.environment[$0] }
                var rc = try callRC(deadline) { bs_userauth_publickey_fromfile(s, user, keyPath, passphrase ?? "") }
                if rc == LIBSSH2_ERROR_FILE, passphrase == nil, let typed = options.passphrase?(keyPath) {
                    passphrase = typed
                    // Time spent typing does not count against the connect timeout.
                    deadline = Deadline.after(endpoint.connectTimeout, error: connectDeadline.error)
                    rc = try callRC(deadline) { bs_userauth_publickey_fromfile(s, user, keyPath, typed) }
                }
                if rc == 0 { return }
                switch rc {
                case LIBSSH2_ERROR_FILE where passphrase == nil:
                    let source = endpoint.passphraseEnvironment.map { "$\($0) is not set" } ?? "no passphrase variable"
                    tried.append("\(description) (cannot load it without a passphrase; if it is encrypted: "
                        + "\(source) and no terminal to ask)")
                case LIBSSH2_ERROR_FILE:
                    tried.append("\(description) (cannot load it: wrong passphrase?)")
                case LIBSSH2_ERROR_AUTHENTICATION_FAILED, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
                    if KeyFile.keyType(keyPath) == "ssh-rsa" {
                        // libssh2 1.10 signs with ssh-rsa (SHA-1), which OpenSSH 8.8+ refuses by default.
                        tried.append("\(description) (RSA: this libssh2 signs with SHA-1 ssh-rsa, refused by "
                            + "OpenSSH 8.8 and later unless PubkeyAcceptedAlgorithms +ssh-rsa; prefer ed25519)")
                    } else {
                        tried.append(description)
                    }
                default:
                    throw failure(.authentication, "public key authentication", rc)
                }
            }
        }

        if endpoint.useAgent {
            let socketPath = options.agentSocketPath ?? options.environment["SSH_AUTH_SOCK"]
            if let socketPath, !socketPath.isEmpty {
                if try agentAuth(session: s, socketPath: socketPath, deadline: deadline) { return }
                tried.append("agent")
            } else {
                tried.append("agent (SSH_AUTH_SOCK is not set)")
            }
        }

        let list = tried.isEmpty ? "nothing: no key file and no agent configured" : tried.joined(separator: ", ")
        throw SSHError(.authentication, host: label,
                       message: "host \(label): authentication failed for user \(user) (tried: \(list); "
                           + "server accepts: \(serverMethods.isEmpty ? "nothing" : serverMethods))")
    }

    private func agentAuth(session s: OpaquePointer, socketPath: String, deadline: Deadline) throws -> Bool {
        guard let agent = libssh2_agent_init(s) else { return false }
        defer { libssh2_agent_free(agent) }
        libssh2_agent_set_identity_path(agent, socketPath)
        guard libssh2_agent_connect(agent) == 0 else { return false }
        defer { libssh2_agent_disconnect(agent) }
        guard libssh2_agent_list_identities(agent) == 0 else { return false }
        var previous: UnsafeMutablePointer<libssh2_agent_publickey>?
        while true {
            var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
            let rc = libssh2_agent_get_identity(agent, &identity, previous)
            if rc != 0 { return false }
            guard let identity else { return false }
            let auth = try callRC(deadline) { libssh2_agent_userauth(agent, self.endpoint.user, identity) }
            if auth == 0 { return true }
            previous = identity
        }
    }
}
