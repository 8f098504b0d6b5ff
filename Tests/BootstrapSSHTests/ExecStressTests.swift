import BootstrapCore
import BootstrapTransport
@testable import BootstrapSSH
import Foundation
import Testing

/// Opt-in (`BOOTSTRAP_STRESS=1`, or `scripts/stress-exec`): the output-callback command and a one-second
/// command, hundreds of times each, on 50 sessions at once, while two busy loops keep both cores loaded.
/// Every command must finish well within its time limit; the figures are printed.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["BOOTSTRAP_STRESS"] != nil, "opt-in: BOOTSTRAP_STRESS=1"))
struct ExecStressTests {
    @Test func callbackAndOneSecondCommandsUnderLoad() async throws {
        let rounds = Int(ProcessInfo.processInfo.environment["BOOTSTRAP_STRESS_ROUNDS"] ?? "") ?? 6
        let keys = try await Keys.load()
        let server = try await SSHD.start(extraConfig: ["MaxStartups 200:30:300"])
        defer { server.stop() }
        let hogs = try (0..<2).map { _ in try Child.spawn("/bin/sh", ["-c", "while :; do :; done"]) }
        defer { hogs.forEach { $0.terminate() } }
        let knownHosts = try server.knownHostsFile()
        let sessions = try await withThrowingTaskGroup(of: SSHSession.self) { group in
            for i in 0..<50 {
                group.addTask {
                    try await SSHSession.open(endpoint(server, name: "host-\(i)", key: keys.ed25519.privatePath,
                                                       knownHosts: knownHosts, timeout: .seconds(30)),
                                              options: testOptions())
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let clock = ContinuousClock()
        let start = clock.now
        // Per command: how long it took, and whether it failed.
        let results = try await withThrowingTaskGroup(of: (Duration, String?).self) { group in
            for (i, session) in sessions.enumerated() {
                group.addTask {
                    var slowest = Duration.zero
                    for round in 0..<rounds {
                        let t0 = clock.now
                        do {
                            if (i + round) % 2 == 0 {
                                let seen = Notices()
                                let r = try await session.run(
                                    ShellCommand(script: "echo one; echo warn >&2; sleep 1; printf 'two\\nthree'"),
                                    stdin: nil, timeout: .seconds(20), output: { _, line in seen.add(line) })
                                guard r.exitStatus == 0, seen.all.sorted() == ["one", "three", "two", "warn"] else {
                                    return (slowest, "host-\(i): wrong result \(r.exitStatus) \(seen.all)")
                                }
                            } else {
                                let r = try await session.run(ShellCommand(["sleep", "1"]), stdin: nil,
                                                              timeout: .seconds(20), output: nil)
                                guard r.exitStatus == 0 else { return (slowest, "host-\(i): exit \(r.exitStatus)") }
                            }
                        } catch {
                            return (slowest, "host-\(i) round \(round): \(error)")
                        }
                        slowest = max(slowest, clock.now - t0)
                    }
                    return (slowest, nil)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for s in sessions { await s.close() }
        let failures = results.compactMap(\.1)
        let slowest = results.map(\.0).max() ?? .zero
        print("exec stress: \(sessions.count) sessions × \(rounds) commands of 1 s under 2 busy loops: "
              + "\(failures.count) failed, slowest \(slowest), wall \(clock.now - start)")
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect(slowest < .seconds(10), "slowest command took \(slowest)")
    }
}
