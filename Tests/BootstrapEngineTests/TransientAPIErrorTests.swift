import BootstrapCore
import BootstrapTransport
import Foundation
import Testing
@testable import BootstrapEngine

/// A session whose commands fail with the given stderr a number of times, then succeed.
private final class FlakySession: HostSession, @unchecked Sendable {
    let endpoint = HostEndpoint(name: "cp-1", address: "10.0.0.1", user: "root", knownHostsPath: "/dev/null")
    let lock = NSLock()
    var failures: Int
    let stderr: String
    var runs = 0

    init(failures: Int, stderr: String) {
        self.failures = failures
        self.stderr = stderr
    }

    func run(_ command: ShellCommand, stdin: Data?, timeout: Duration?, output: OutputHandler?) async throws
        -> CommandResult
    {
        lock.withLock {
            runs += 1
            if failures > 0 {
                failures -= 1
                return CommandResult(exitStatus: 1, stdout: Data(), stderr: Data(stderr.utf8))
            }
            return CommandResult(exitStatus: 0, stdout: Data("node/worker-3 labeled\n".utf8), stderr: Data())
        }
    }

    func upload(_ data: Data, to path: String, mode: Int) async throws {}
    func download(_ path: String) async throws -> Data { Data() }
    func close() async {}
}

@Suite struct TransientAPIErrorTests {
    let timedOut = "Error from server (InternalError): etcdserver: request timed out\n"
    let label = NodeRecipes.nodeLabels(node: "worker-3", set: ["tier": "app"], remove: [])!

    @Test func aKubectlRequestIsRepeatedWhileEtcdHasNoQuorumForAMoment() async throws {
        let session = FlakySession(failures: 2, stderr: timedOut)
        let log = EventLog()
        let runner = HostRunner(name: "cp-1", session: session, events: log.sink, redactor: Redactor())
        let result = try await runner.run(label)
        #expect(result.succeeded)
        #expect(session.runs == 3)
        #expect(log.text.contains("running it again in 0.5s (attempt 2 of 6)"))
        #expect(log.text.contains("running it again in 1.0s (attempt 3 of 6)"))
    }

    @Test func aLastingTransientErrorFailsAfterTheLastAttemptNamingIt() async throws {
        let session = FlakySession(failures: 100, stderr: "The connection to the server 10.0.0.1:6443 was refused - did you specify the right host or port?\n")
        let runner = HostRunner(name: "cp-1", session: session, events: EventLog().sink, redactor: Redactor())
        do {
            try await runner.run(NodeRecipes.kubectl(["uncordon", "worker-1"]))
            Issue.record("a lasting failure must throw")
        } catch EngineError.commandFailed(let host, let command, _, _, let stderr) {
            #expect(host == "cp-1" && command.contains("uncordon worker-1") && stderr.contains("was refused"))
        }
        #expect(session.runs == TransientAPIError.attempts)
    }

    @Test func otherErrorsAndOtherCommandsFailAtOnce() async throws {
        let notFound = FlakySession(failures: 1, stderr: "Error from server (NotFound): nodes \"worker-3\" not found\n")
        let r1 = HostRunner(name: "cp-1", session: notFound, events: EventLog().sink, redactor: Redactor())
        await #expect(throws: EngineError.self) { try await r1.run(label) }
        #expect(notFound.runs == 1)
        // kubeadm, Helm, package transactions: not repeated here (they are not single API requests)
        let kubeadm = FlakySession(failures: 1, stderr: timedOut)
        let r2 = HostRunner(name: "cp-1", session: kubeadm, events: EventLog().sink, redactor: Redactor())
        await #expect(throws: EngineError.self) { try await r2.run(ShellCommand(["kubeadm", "upgrade", "node"])) }
        #expect(kubeadm.runs == 1)
    }

    @Test func theReasonIsTheLineThatSaysSo() {
        #expect(TransientAPIError.reason(in: "W1204 warning\n" + timedOut) == "Error from server (InternalError): etcdserver: request timed out")
        #expect(TransientAPIError.reason(in: "error: unable to drain node \"w\": Cannot evict pod") == nil)
    }
}
