import BootstrapCore
import BootstrapTransport
@testable import BootstrapSSH
import Foundation
import Testing

@Suite("SSH: a connection lost under a command", .serialized, .enabled(if: Requirements.shouldRun, "needs root and sshd"))
struct ConnectionLostTests {
    @Test("the server side of the connection dies mid-command: the error says the connection was lost")
    func lostMidCommand() async throws {
        let keys = try Keys.shared()
        let server = try SSHD()
        defer { server.stop() }
        let session = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await session.close() } }
        // The command's parent is the sshd process serving this connection: killing it drops the connection.
        let error = await expectSSHError {
            _ = try await session.run(ShellCommand(script: "echo started; kill -KILL $PPID; sleep 5", privileged: false))
        }
        #expect(error?.kind == .closed, "\(error?.message ?? "")")
        #expect(error?.message.contains("the connection to the host was lost") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("libssh2 code") == false, "\(error?.message ?? "")")
        #expect(error?.message.contains("transport read") == false, "\(error?.message ?? "")")
        // On a line about that host, the host is not named again; its address is kept.
        #expect(error?.hostName == "worker-1")
        #expect(error?.detail.hasPrefix("\(server.address):\(server.port): the connection to the host was lost") == true,
                "\(error?.detail ?? "")")
    }
}
