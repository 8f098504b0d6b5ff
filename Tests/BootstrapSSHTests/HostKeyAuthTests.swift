import BootstrapCore
import BootstrapTransport
@testable import BootstrapSSH
import Foundation
import Testing

@Suite("SSH host keys and authentication against a real sshd", .serialized,
       .enabled(if: Requirements.shouldRun, "needs root and sshd"))
struct HostKeyAuthTests {
    @Test("unknown host key under strict: refused, with key type and SHA256 fingerprint")
    func unknownStrict() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let knownHosts = try server.dir.write("known_hosts", "")
        let error = await expectSSHError {
            let s = try await SSHSession.open(endpoint(server, key: keys.ed25519.privatePath, knownHosts: knownHosts),
                                              options: testOptions())
            await s.close()
        }
        #expect(error?.kind == .hostKeyUnknown)
        #expect(error?.message.contains("worker-1 (\(server.address):\(server.port))") == true)
        #expect(error?.message.contains("ED25519") == true)
        #expect(server.fingerprint.hasPrefix("SHA256:"))
        #expect(error?.message.contains(server.fingerprint) == true)
        // Nothing was written.
        #expect(try String(contentsOfFile: knownHosts, encoding: .utf8).isEmpty)
    }

    @Test("accept-new: an unknown key is added (OpenSSH can read it); the second connect is silent")
    func acceptNew() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start(hostKeyType: "ecdsa")
        defer { server.stop() }
        let knownHosts = server.dir.file("sub/known_hosts")
        let notices = Notices()
        let ep = endpoint(server, key: keys.ed25519.privatePath, knownHosts: knownHosts, policy: .acceptNew)
        let first = try await SSHSession.open(ep, options: testOptions(notices: notices))
        #expect(try await first.run(ShellCommand(["true"])).succeeded)
        await first.close()
        let afterFirst = try String(contentsOfFile: knownHosts, encoding: .utf8)
        #expect(afterFirst == "[\(server.address)]:\(server.port) \(server.publicKey)\n")
        #expect(notices.all.count == 1)
        #expect(notices.all.first?.contains(server.fingerprint) == true)
        let found = try await runAsync("/usr/bin/ssh-keygen", ["-F", "[\(server.address)]:\(server.port)", "-f", knownHosts])
        #expect(found.stdout.contains(server.publicKey))

        let second = try await SSHSession.open(ep, options: testOptions(notices: notices))
        await second.close()
        #expect(notices.all.count == 1)
        #expect(try String(contentsOfFile: knownHosts, encoding: .utf8) == afterFirst)
        // And now strict trusts it too.
        var strict = ep
        strict.hostKeyPolicy = .strict
        let third = try await SSHSession.open(strict, options: testOptions(notices: notices))
        await third.close()
    }

    @Test("changed host key: refused under strict and accept-new, both fingerprints shown")
    func changedKey() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        // known_hosts holds another ed25519 key for this host and port.
        let other = server.dir.file("other_host_key")
        try await runAsync("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other])
        let otherPublic = try String(contentsOfFile: other + ".pub", encoding: .utf8)
            .split(separator: " ").prefix(2).joined(separator: " ")
        let otherFingerprint = try await runAsync("/usr/bin/ssh-keygen", ["-l", "-E", "sha256", "-f", other + ".pub"])
            .stdout.split(separator: " ")[1]
        let knownHosts = try server.dir.write("known_hosts", "[\(server.address)]:\(server.port) \(otherPublic)\n")
        for policy in [ClusterPlan.HostKeyPolicy.strict, .acceptNew] {
            let error = await expectSSHError {
                let s = try await SSHSession.open(
                    endpoint(server, key: keys.ed25519.privatePath, knownHosts: knownHosts, policy: policy),
                    options: testOptions())
                await s.close()
            }
            #expect(error?.kind == .hostKeyChanged)
            #expect(error?.message.contains(server.fingerprint) == true, "offered fingerprint in: \(error?.message ?? "")")
            #expect(error?.message.contains(String(otherFingerprint)) == true, "expected fingerprint in: \(error?.message ?? "")")
            #expect(error?.message.contains("ED25519") == true)
        }
        // The file was not touched.
        #expect(try String(contentsOfFile: knownHosts, encoding: .utf8) == "[\(server.address)]:\(server.port) \(otherPublic)\n")

        // A key marked @revoked is refused even though a matching entry exists.
        let revoked = try server.dir.write("known_hosts_revoked", server.knownHostsLine + "@revoked * \(server.publicKey)\n")
        let error = await expectSSHError {
            let s = try await SSHSession.open(
                endpoint(server, key: keys.ed25519.privatePath, knownHosts: revoked, policy: .acceptNew),
                options: testOptions())
            await s.close()
        }
        #expect(error?.message.contains("@revoked") == true)
    }

    @Test("hashed known_hosts entries are honoured")
    func hashedEntries() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let knownHosts = try server.dir.write("known_hosts", "# comment\nsomething.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n" + server.knownHostsLine)
        try await runAsync("/usr/bin/ssh-keygen", ["-H", "-f", knownHosts])
        let hashed = try String(contentsOfFile: knownHosts, encoding: .utf8)
        #expect(hashed.contains("|1|"))
        #expect(!hashed.contains(server.address))
        let s = try await SSHSession.open(endpoint(server, key: keys.ed25519.privatePath, knownHosts: knownHosts),
                                          options: testOptions())
        #expect(try await s.run(ShellCommand(["true"])).succeeded)
        await s.close()
    }

    @Test("host key checking off: connects to an unknown host and warns once per host")
    func policyOff() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let knownHosts = server.dir.file("never_written")
        let notices = Notices()
        let ep = endpoint(server, key: keys.ed25519.privatePath, knownHosts: knownHosts, policy: .off)
        for _ in 0..<2 {
            let s = try await SSHSession.open(ep, options: testOptions(notices: notices))
            await s.close()
        }
        #expect(notices.all.count == 1)
        #expect(notices.all.first?.contains("warning") == true)
        #expect(notices.all.first?.contains(server.fingerprint) == true)
        #expect(!FileManager.default.fileExists(atPath: knownHosts))
    }

    @Test("ed25519, ecdsa and rsa key files authenticate (rsa where the server still takes ssh-rsa)")
    func keyTypes() async throws {
        let keys = try await Keys.load()
        #expect(KeyFile.keyType(keys.rsa.privatePath) == "ssh-rsa")
        #expect(KeyFile.keyType(keys.encrypted.privatePath) == "ssh-ed25519")
        let server = try await SSHD.start()
        defer { server.stop() }
        let knownHosts = try server.knownHostsFile()
        for key in [keys.ed25519, keys.ecdsa] {
            let s = try await SSHSession.open(endpoint(server, key: key.privatePath, knownHosts: knownHosts),
                                              options: testOptions())
            #expect(try await s.run(ShellCommand(["whoami"])).stdoutText == "root\n")
            await s.close()
        }
        // libssh2 1.10 signs RSA with SHA-1: a default OpenSSH 9 server refuses, and the error says why.
        let refused = await expectSSHError {
            let s = try await SSHSession.open(endpoint(server, key: keys.rsa.privatePath, knownHosts: knownHosts),
                                              options: testOptions())
            await s.close()
        }
        #expect(refused?.kind == .authentication)
        #expect(refused?.message.contains("PubkeyAcceptedAlgorithms +ssh-rsa") == true, "\(refused?.message ?? "")")
        let legacy = try await SSHD.start(extraConfig: ["PubkeyAcceptedAlgorithms +ssh-rsa"])
        defer { legacy.stop() }
        let s = try await SSHSession.open(
            endpoint(legacy, key: keys.rsa.privatePath, knownHosts: try legacy.knownHostsFile()), options: testOptions())
        #expect(try await s.run(ShellCommand(["whoami"])).stdoutText == "root\n")
        await s.close()
    }

    @Test("a key the server does not accept: authentication error naming user, host and methods tried")
    func wrongKey() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let knownHosts = try server.knownHostsFile()
        let error = await expectSSHError {
            let s = try await SSHSession.open(
                endpoint(server, key: keys.stranger.privatePath, knownHosts: knownHosts, useAgent: true),
                options: testOptions())
            await s.close()
        }
        #expect(error?.kind == .authentication)
        #expect(error?.message.hasPrefix(
            "host worker-1 (\(server.address):\(server.port)): authentication failed for user root (tried: "
                + "publickey file \(keys.stranger.privatePath), agent") == true,
            "\(error?.message ?? "")")
    }

    @Test("passphrase-protected key: from the environment variable; missing or wrong passphrase fails clearly")
    func passphrase() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let knownHosts = try server.knownHostsFile()
        let ep = endpoint(server, key: keys.encrypted.privatePath, knownHosts: knownHosts,
                          passphraseVariable: "TEST_KEY_PASSPHRASE")

        let s = try await SSHSession.open(ep, options: testOptions(environment: ["TEST_KEY_PASSPHRASE": Keys.passphrase]))
        #expect(try await s.run(ShellCommand(["true"])).succeeded)
        await s.close()

        let missing = await expectSSHError {
            let s = try await SSHSession.open(ep, options: testOptions(environment: [:]))
            await s.close()
        }
        #expect(missing?.kind == .authentication)
        #expect(missing?.message.contains("encrypted: $TEST_KEY_PASSPHRASE is not set") == true, "\(missing?.message ?? "")")

        let wrong = await expectSSHError {
            let s = try await SSHSession.open(ep, options: testOptions(environment: ["TEST_KEY_PASSPHRASE": "nope-xyzzy"]))
            await s.close()
        }
        #expect(wrong?.kind == .authentication)
        #expect(wrong?.message.contains("nope-xyzzy") == false)
        #expect(wrong?.message.contains(Keys.passphrase) == false)
    }

    @Test("passphrase-protected key: the transport asks its provider (the CLI's prompt), once, only for an encrypted key")
    func passphraseProvider() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let knownHosts = try server.knownHostsFile()
        let asked = Notices()
        let provider: PassphraseProvider = { path in asked.add(path); return Keys.passphrase }

        // An unencrypted key loads without one: the provider is not asked.
        let plain = try await SSHSession.open(endpoint(server, key: keys.ed25519.privatePath, knownHosts: knownHosts),
                                              options: testOptions(passphrase: provider))
        await plain.close()
        #expect(asked.all.isEmpty)

        // An encrypted key with no variable set: asked once, with the key's path, and the answer is used.
        let ep = endpoint(server, key: keys.encrypted.privatePath, knownHosts: knownHosts,
                          passphraseVariable: "TEST_KEY_PASSPHRASE")
        let s = try await SSHSession.open(ep, options: testOptions(passphrase: provider))
        #expect(try await s.run(ShellCommand(["true"])).succeeded)
        await s.close()
        #expect(asked.all == [keys.encrypted.privatePath])

        // The variable, when set, wins: no question.
        let fromVariable = try await SSHSession.open(
            ep, options: testOptions(environment: ["TEST_KEY_PASSPHRASE": Keys.passphrase], passphrase: provider))
        await fromVariable.close()
        #expect(asked.all.count == 1)

        // No one to ask (the provider answers nil): the error says what to set.
        let unanswered = await expectSSHError {
            let s = try await SSHSession.open(ep, options: testOptions(passphrase: { _ in nil }))
            await s.close()
        }
        #expect(unanswered?.message.contains("encrypted: $TEST_KEY_PASSPHRASE is not set") == true,
                "\(unanswered?.message ?? "")")
    }

    @Test("ssh-agent: a key held by a real ssh-agent authenticates")
    func agent() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start(authorized: [keys.ecdsa])
        defer { server.stop() }
        let knownHosts = try server.knownHostsFile()
        let socketPath = server.dir.file("agent.sock")
        let agent = try Child.spawn("/usr/bin/ssh-agent", ["-D", "-a", socketPath])
        defer { agent.terminate() }
        var waited = 0
        while !FileManager.default.fileExists(atPath: socketPath) && waited < 200 { try await Task.sleep(for: .milliseconds(20)); waited += 1 }
        try await runAsync("/usr/bin/ssh-add", ["-q", keys.ecdsa.privatePath], environment: ["SSH_AUTH_SOCK": socketPath])

        // The key file is not accepted by this server, so only the agent can get us in.
        let ep = endpoint(server, key: keys.ed25519.privatePath, knownHosts: knownHosts, useAgent: true)
        let viaOption = try await SSHSession.open(ep, options: testOptions(agent: socketPath))
        #expect(try await viaOption.run(ShellCommand(["true"])).succeeded)
        await viaOption.close()
        let viaEnvironment = try await SSHSession.open(ep, options: testOptions(environment: ["SSH_AUTH_SOCK": socketPath]))
        await viaEnvironment.close()

        var noAgent = ep
        noAgent.useAgent = false
        let error = await expectSSHError {
            let s = try await SSHSession.open(noAgent, options: testOptions(agent: socketPath))
            await s.close()
        }
        #expect(error?.kind == .authentication)
    }
}
