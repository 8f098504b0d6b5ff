import BootstrapTestSupport
import BootstrapCore
import BootstrapTransport
@testable import BootstrapSSH
import Foundation
import Testing

@Suite("SSH files and sudo against a real sshd", .serialized, .enabled(if: Requirements.shouldRun, "needs root and sshd"))
struct FilesSudoTests {
    @Test("root: 5 MB upload with a mode into a new directory, overwrite, download byte-identical, no leftovers")
    func uploadDownloadRoot() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let s = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await s.close() } }
        let dir = server.dir.file("remote/new dir")
        let path = dir + "/payload.bin"
        let data = randomData(5 * 1024 * 1024 + 3)
        try await s.upload(data, to: path, mode: 0o640)
        #expect(FileManager.default.contents(atPath: path) == data)
        let mode = try await s.run(ShellCommand(["stat", "-c", "%a %U", path]))
        #expect(mode.stdoutText == "640 root\n")
        let back = try await s.download(path)
        #expect(back == data)

        let replacement = Data("short\n".utf8)
        try await s.upload(replacement, to: path, mode: 0o600)
        #expect(try await s.download(path) == replacement)
        #expect(try await s.run(ShellCommand(["stat", "-c", "%a", path])).stdoutText == "600\n")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("bootstrap-upload") }
        #expect(leftovers.isEmpty)

        try await s.upload(Data(), to: dir + "/empty", mode: 0o644)
        #expect(try await s.download(dir + "/empty").isEmpty)

        let missing = await expectSSHError { _ = try await s.download(dir + "/does-not-exist") }
        #expect(missing?.kind == .remoteFile)
        #expect(missing?.message.contains("no such file") == true)
    }

    @Test("cancelling an upload stops it, leaves no file, and the session goes on working")
    func cancelledUpload() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let s = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await s.close() } }
        let path = server.dir.file("big.bin")
        let big = randomData(96 * 1024 * 1024)
        // Cancel at several moments: while the file is being opened (the server's answer still in flight),
        // and part-way through the write. Each time the caller sees a cancellation, nothing is left behind,
        // and the next transfer on the same session works.
        for delay in [0, 1, 3, 30] {
            let task = Task { try await s.upload(big, to: path, mode: 0o644) }
            try await Task.sleep(for: .milliseconds(delay))
            task.cancel()
            let outcome = await task.result
            switch outcome {
            case .success: try FileManager.default.removeItem(atPath: path)  // finished before the cancel landed
            case .failure(let error): #expect((error as? SSHError)?.kind == .cancelled, "after \(delay) ms: \(error)")
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: server.dir.path).filter {
                $0.contains("bootstrap-upload")
            }
            #expect(leftovers.isEmpty, "temporary files left after \(delay) ms: \(leftovers)")
            let probe = Data("probe \(delay)\n".utf8)
            try await s.upload(probe, to: path + ".probe", mode: 0o600)
            #expect(try await s.download(path + ".probe") == probe)
        }
        #expect(!FileManager.default.fileExists(atPath: path))

        let already = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await s.download(path)
        }
        #expect((await already.result).isFailure)

        let small = Data("after\n".utf8)
        try await s.upload(small, to: path, mode: 0o644)
        #expect(try await s.download(path) == small)
    }

    @Test("non-root user with passwordless sudo: privileged commands, upload to a root-only place, download")
    func sudoUser() async throws {
        let keys = try await Keys.load()
        try await offPool { try TestUsers.ensure() }
        let revoke = try TestUsers.grantSudo()
        defer { revoke() }
        let server = try await SSHD.start()
        defer { server.stop() }
        let s = try await SSHSession.open(
            endpoint(server, user: TestUsers.withSudo, key: keys.ed25519.privatePath,
                     knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await s.close() } }
        #expect(s.commandLine(for: ShellCommand(["id", "-u"])) == "sudo -n sh -c 'id -u'")
        #expect(try await s.run(ShellCommand(["id", "-u"], privileged: true)).stdoutText == "0\n")
        #expect(try await s.run(ShellCommand(["id", "-un"], privileged: false)).stdoutText == "\(TestUsers.withSudo)\n")
        let piped = try await s.run(ShellCommand(script: "cat | tr a-z A-Z", privileged: true), stdin: Data("abc".utf8),
                                    timeout: .seconds(30), output: nil)
        #expect(piped.stdoutText == "ABC")

        // A directory only root may enter.
        let dir = server.dir.file("root-only")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let path = dir + "/secret.conf"
        let data = randomData(5 * 1024 * 1024)
        try await s.upload(data, to: path, mode: 0o600)
        #expect(FileManager.default.contents(atPath: path) == data)
        #expect(try await s.run(ShellCommand(["stat", "-c", "%a %U", path])).stdoutText == "600 root\n")
        #expect(try await s.download(path) == data)
        // Readable by the user: plain SFTP.
        let open = server.dir.file("readable.txt")
        try "hello\n".write(toFile: open, atomically: false, encoding: .utf8)
        #expect(try await s.download(open) == Data("hello\n".utf8))
        let tmpLeftovers = try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter {
            $0.hasPrefix(".bootstrap-upload-")
        }
        #expect(tmpLeftovers.isEmpty)
    }

    @Test("non-root user without passwordless sudo: a clear error, unprivileged commands still work")
    func noSudoUser() async throws {
        let keys = try await Keys.load()
        try await offPool { try TestUsers.ensure() }
        let server = try await SSHD.start()
        defer { server.stop() }
        let s = try await SSHSession.open(
            endpoint(server, user: TestUsers.withoutSudo, key: keys.ed25519.privatePath,
                     knownHosts: try server.knownHostsFile()),
            options: testOptions())
        defer { Task { await s.close() } }
        let error = await expectSSHError { _ = try await s.run(ShellCommand(["id", "-u"], privileged: true)) }
        #expect(error?.kind == .sudoPasswordRequired)
        #expect(error?.message.hasPrefix("user \(TestUsers.withoutSudo) on worker-1 needs passwordless sudo") == true,
                "\(error?.message ?? "")")
        let upload = await expectSSHError { try await s.upload(Data("x".utf8), to: "/etc/bootstrap-ssh-test", mode: 0o644) }
        #expect(upload?.kind == .sudoPasswordRequired)
        #expect(!FileManager.default.fileExists(atPath: "/etc/bootstrap-ssh-test"))
        #expect(try await s.run(ShellCommand(["id", "-un"], privileged: false)).stdoutText == "\(TestUsers.withoutSudo)\n")
    }
}

extension Result {
    var isFailure: Bool { if case .failure = self { true } else { false } }
}
