import BootstrapCore
import BootstrapTransport
@testable import BootstrapSSH
import Foundation
import Testing

@Suite("SSH exec against a real sshd", .serialized, .enabled(if: Requirements.shouldRun, "needs root and sshd"))
struct ExecTests {
    @Test("exit codes 0, 1, 127, 42 and a signal; stdout and stderr kept apart")
    func exitCodes() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let session = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await session.close() } }

        let ok = try await session.run(ShellCommand(["true"]))
        #expect(ok.exitStatus == 0 && ok.exitSignal == nil && ok.succeeded)
        let fail = try await session.run(ShellCommand(["false"]))
        #expect(fail.exitStatus == 1 && !fail.succeeded)
        let missing = try await session.run(ShellCommand(["no-such-command-bootstrap-test"]))
        #expect(missing.exitStatus == 127)
        #expect(missing.stderrText.contains("not found"))
        let custom = try await session.run(ShellCommand(script: "exit 42"))
        #expect(custom.exitStatus == 42)
        let killed = try await session.run(ShellCommand(script: "kill -KILL $$"))
        #expect(killed.exitSignal == "KILL")
        #expect(killed.exitStatus == 137)
        #expect(!killed.succeeded)
        let both = try await session.run(ShellCommand(script: "echo out; echo err >&2; echo 'out 2'"))
        #expect(both.stdoutText == "out\nout 2\n")
        #expect(both.stderrText == "err\n")
        let quoted = try await session.run(ShellCommand(["printf", "%s|", "it's", "a b", "$HOME", "`x`"]))
        #expect(quoted.stdoutText == "it's|a b|$HOME|`x`|")
        let utf8 = try await session.run(ShellCommand(["printf", "%s", "héllo wörld ✓"]))
        #expect(utf8.stdoutText == "héllo wörld ✓")
        #expect(utf8.stdout.count == "héllo wörld ✓".utf8.count)
    }

    @Test("stdin is delivered, large and small; a command that ignores stdin still completes")
    func standardInput() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let session = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await session.close() } }

        let small = try await session.run(ShellCommand(["tr", "a-z", "A-Z"]), stdin: Data("hello\n".utf8),
                                          timeout: .seconds(20), output: nil)
        #expect(small.stdoutText == "HELLO\n")
        let big = randomData(12_000_000)
        let echoed = try await session.run(ShellCommand(["cat"]), stdin: big, timeout: .seconds(60), output: nil)
        #expect(echoed.stdout == big)
        let ignored = try await session.run(ShellCommand(["echo", "done"]), stdin: big, timeout: .seconds(60),
                                            output: nil)
        #expect(ignored.stdoutText == "done\n")
        // No stdin: the command sees end of input at once instead of waiting forever.
        let empty = try await session.run(ShellCommand(["wc", "-c"]), stdin: nil, timeout: .seconds(20), output: nil)
        #expect(empty.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }

    @Test("20 MB on stdout, on stderr, and on both interleaved, without deadlock")
    func largeStreams() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let session = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await session.close() } }

        let count = 2_800_000
        var expected = Data()
        expected.reserveCapacity(22_000_000)
        for i in 1...count { expected.append(contentsOf: "\(i)\n".utf8) }
        #expect(expected.count > 20_000_000)

        let out = try await session.run(ShellCommand(["seq", "1", "\(count)"]), stdin: nil, timeout: .seconds(120),
                                        output: nil)
        #expect(out.stdout.count == expected.count)
        #expect(out.stdout == expected)
        #expect(out.stderr.isEmpty)

        let err = try await session.run(ShellCommand(script: "seq 1 \(count) >&2"), stdin: nil,
                                        timeout: .seconds(120), output: nil)
        #expect(err.stdout.isEmpty)
        #expect(err.stderr == expected)
        #expect(err.exitStatus == 0)

        let both = try await session.run(ShellCommand(script: "seq 1 \(count) | tee /dev/stderr"), stdin: nil,
                                         timeout: .seconds(120), output: nil)
        #expect(both.stdout == expected)
        #expect(both.stderr == expected)
    }

    @Test("output lines reach the callback as they arrive, per stream")
    func outputCallback() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let session = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await session.close() } }

        let seen = Notices()
        let clock = ContinuousClock()
        let start = clock.now
        let firstLineAt = Notices()
        let result = try await session.run(
            ShellCommand(script: "echo one; echo warn >&2; sleep 1; printf 'two\\nthree'"), stdin: nil,
            timeout: .seconds(20),
            output: { stream, line in
                seen.add("\(stream == .stdout ? "out" : "err"):\(line)")
                if line == "one" { firstLineAt.add("\((clock.now - start).seconds)") }
            })
        #expect(result.exitStatus == 0)
        let lines = seen.all
        #expect(lines.filter { $0.hasPrefix("out:") } == ["out:one", "out:two", "out:three"])
        // The login shell's own start-up files may print to stderr first (root's pyenv set-up does); the
        // command's line must come through, once, and last.
        #expect(lines.filter { $0.hasPrefix("err:") }.last == "err:warn")
        #expect(lines.filter { $0 == "err:warn" }.count == 1)
        // "one" arrived before the command finished (it sleeps a second after printing it).
        let at = Double(firstLineAt.all.first ?? "99") ?? 99
        #expect(at < (clock.now - start).seconds - 0.5)
    }

    @Test("a command that outlives its timeout is cut off and reported; the session stays usable")
    func commandTimeout() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let session = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await session.close() } }

        let clock = ContinuousClock()
        let start = clock.now
        let secret = Secret("s3cr3t-token")
        let error = await expectSSHError {
            _ = try await session.run(ShellCommand(script: "sleep 29.123; true # \(secret.revealed)", secrets: [secret]),
                                      stdin: nil, timeout: .seconds(1), output: nil)
        }
        let elapsed = clock.now - start
        #expect(error?.kind == .commandTimeout)
        #expect(error?.message.contains("timed out after 1s") == true)
        #expect(error?.message.contains("s3cr3t-token") == false)
        #expect(elapsed < .seconds(15), "took \(elapsed)")  // the command itself would take 29 s
        let after = try await session.run(ShellCommand(["echo", "still here"]))
        #expect(after.stdoutText == "still here\n")
        // The remote command was killed with its process group, not left running.
        var survivors = ""
        for _ in 0..<50 {
            survivors = try await runAsync("/usr/bin/pgrep", ["-f", "sleep 29.123"], check: false).stdout
            if survivors.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(survivors.isEmpty, "still running: \(survivors)")
        // With a time limit that is not reached, output is exactly the command's own.
        let timed = try await session.run(ShellCommand(script: "echo out; echo err >&2; exit 3"), stdin: nil,
                                          timeout: .seconds(30), output: nil)
        #expect(timed.stdoutText == "out\n")
        #expect(timed.stderrText == "err\n")
        #expect(timed.exitStatus == 3)
    }

    @Test("cancelling the waiting task stops the command; the session stays usable")
    func cancellation() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let session = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await session.close() } }
        let clock = ContinuousClock()
        let start = clock.now
        let task = Task { try await session.run(ShellCommand(["sleep", "30"])) }
        try await Task.sleep(for: .milliseconds(500))
        task.cancel()
        let outcome = await task.result
        #expect(clock.now - start < .seconds(15))  // the command itself would take 30 s
        switch outcome {
        case .success: Issue.record("a cancelled command reported success")
        case .failure(let error): #expect((error as? SSHError)?.kind == .cancelled, "\(error)")
        }
        #expect(try await session.run(ShellCommand(["echo", "ok"])).stdoutText == "ok\n")
    }

    @Test("one session serves many commands (no reconnect per command)")
    func sessionReuse() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let session = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        // The parent of the remote shell is the per-connection sshd process: it must stay the same.
        var parents = Set<String>()
        for _ in 0..<50 {
            let r = try await session.run(ShellCommand(script: "echo $PPID", privileged: false))
            parents.insert(r.stdoutText)
        }
        await session.close()
        #expect(parents.count == 1)
        let error = await expectSSHError { _ = try await session.run(ShellCommand(["true"])) }
        #expect(error?.kind == .closed)
    }
}

@Suite struct RemoteProcessTests {
    func take(_ r: RemoteProcess, _ text: String) -> String {
        String(decoding: Array(text.utf8).withUnsafeBytes { r.take($0) }, as: UTF8.self)
    }

    @Test func theTagLineIsTakenAndStartupNoiseBeforeItIsKept() {
        let r = RemoteProcess()
        // A login shell's start-up files wrote to stderr first, in pieces; then the tag, then the command.
        #expect(take(r, "pyenv: cannot re") == "")
        #expect(take(r, "hash\nbootstrap-pi") == "pyenv: cannot rehash\n")
        #expect(r.pid == nil)
        #expect(take(r, "d:4242\nwarn\npartial") == "warn\npartial")
        #expect(r.pid == 4242)
        #expect(r.pending.isEmpty)
    }

    @Test func aTagFirstIsTheUsualCase() {
        let r = RemoteProcess()
        #expect(take(r, "bootstrap-pid:77\n") == "")
        #expect(r.pid == 77)
    }
}
