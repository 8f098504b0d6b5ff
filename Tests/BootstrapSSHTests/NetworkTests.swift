import BootstrapCore
import BootstrapTransport
@testable import BootstrapSSH
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("SSH connections: bastion, timeouts, many hosts", .serialized,
       .enabled(if: Requirements.shouldRun, "needs root and sshd"))
struct NetworkTests {
    @Test("a bastion hop: the target is reached through a direct-tcpip channel, each with its own key check")
    func bastion() async throws {
        let keys = try await Keys.load()
        let jump = try await SSHD.start(authorized: [keys.ecdsa], logLevel: "DEBUG1")
        defer { jump.stop() }
        let target = try await SSHD.start(authorized: [keys.ed25519])
        defer { target.stop() }
        let knownHosts = try jump.dir.write("known_hosts", jump.knownHostsLine + target.knownHostsLine)
        let hop = HostEndpoint(name: "bastion", address: jump.address, port: jump.port, user: "root",
                               keyPath: keys.ecdsa.privatePath, useAgent: false, knownHostsPath: knownHosts)
        let ep = endpoint(target, key: keys.ed25519.privatePath, knownHosts: knownHosts, bastion: hop)
        let s = try await SSHSession.open(ep, options: testOptions())
        let result = try await s.run(ShellCommand(script: "echo via; head -c 3000000 /dev/zero | wc -c"))
        #expect(result.stdoutText == "via\n3000000\n")
        let data = Data((0..<1_000_000).map { UInt8($0 % 251) })
        try await s.upload(data, to: target.dir.file("through-bastion.bin"), mode: 0o644)
        #expect(try await s.download(target.dir.file("through-bastion.bin")) == data)
        await s.close()
        #expect(jump.log.contains("direct-tcpip"), "the bastion's sshd saw no direct-tcpip channel")

        // The bastion's own host key is checked: unknown there means refused.
        let onlyTarget = try target.dir.write("known_hosts_target_only", target.knownHostsLine)
        var badHop = hop
        badHop.knownHostsPath = onlyTarget
        let error = await expectSSHError {
            let s = try await SSHSession.open(
                endpoint(target, key: keys.ed25519.privatePath, knownHosts: onlyTarget, bastion: badHop),
                options: testOptions())
            await s.close()
        }
        #expect(error?.kind == .hostKeyUnknown)
        #expect(error?.host == hop.label)

        // Two hops: first bastion → second bastion → target.
        let second = try await SSHD.start(authorized: [keys.ecdsa], logLevel: "DEBUG1")
        defer { second.stop() }
        let chain = try jump.dir.write("known_hosts_chain", jump.knownHostsLine + second.knownHostsLine + target.knownHostsLine)
        var first = hop
        first.knownHostsPath = chain
        let secondHop = HostEndpoint(name: "bastion-2", address: second.address, port: second.port, user: "root",
                                     keyPath: keys.ecdsa.privatePath, useAgent: false, knownHostsPath: chain,
                                     bastion: first)
        let twoHops = try await SSHSession.open(
            endpoint(target, key: keys.ed25519.privatePath, knownHosts: chain, bastion: secondHop), options: testOptions())
        #expect(try await twoHops.run(ShellCommand(["echo", "two hops"])).stdoutText == "two hops\n")
        await twoHops.close()
        #expect(second.log.contains("direct-tcpip"))
    }

    @Test("a bastion that refuses forwarding: the tunnel error names both hosts")
    func bastionRefusesForwarding() async throws {
        let keys = try await Keys.load()
        let jump = try await SSHD.start(extraConfig: ["AllowTcpForwarding no"])
        defer { jump.stop() }
        let target = try await SSHD.start()
        defer { target.stop() }
        let knownHosts = try jump.dir.write("known_hosts", jump.knownHostsLine + target.knownHostsLine)
        let hop = HostEndpoint(name: "bastion", address: jump.address, port: jump.port, user: "root",
                               keyPath: keys.ed25519.privatePath, useAgent: false, knownHostsPath: knownHosts)
        let error = await expectSSHError {
            let s = try await SSHSession.open(
                endpoint(target, key: keys.ed25519.privatePath, knownHosts: knownHosts, bastion: hop),
                options: testOptions())
            await s.close()
        }
        #expect(error?.kind == .tunnel)
        #expect(error?.message.contains("bastion \(hop.label)") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("\(target.address):\(target.port)") == true)
    }

    @Test("an address where nothing listens fails at once, within the timeout")
    func nothingListens() async throws {
        try Requirements.check()
        let keys = try await Keys.load()
        let address = Loopback.address()
        let port = try Loopback.freePort(on: address)
        let ep = HostEndpoint(name: "worker-1", address: address, port: port, user: "root",
                              keyPath: keys.ed25519.privatePath, useAgent: false, knownHostsPath: "/dev/null",
                              connectTimeout: .seconds(30))
        let clock = ContinuousClock()
        let start = clock.now
        let error = await expectSSHError { _ = try await SSHSession.open(ep, options: testOptions()) }
        // Refused at once, not after the connect timeout (the bound leaves room for a loaded machine).
        #expect(clock.now - start < .seconds(10))
        #expect(error?.kind == .connectRefused)
        #expect(error?.message.hasPrefix("host worker-1 (\(address):\(port)): connection refused") == true)
    }

    @Test("an unreachable host (its SYNs go unanswered) fails within the connect timeout, with the exact message")
    func unreachable() async throws {
        try Requirements.check()
        let keys = try await Keys.load()
        // A listener with a full accept queue drops new SYNs, as a host behind a black hole would.
        let listener = try Loopback.silentListener(backlog: 0)
        defer { close(listener.fd) }
        var fillers: [Int32] = []
        defer { fillers.forEach { close($0) } }
        for _ in 0..<4 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            Net.setNonBlocking(fd)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(listener.port).bigEndian
            inet_pton(AF_INET, listener.address, &addr.sin_addr)
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(fd)
        }
        try await Task.sleep(for: .milliseconds(300))
        let ep = HostEndpoint(name: "worker-9", address: listener.address, port: listener.port, user: "root",
                              keyPath: keys.ed25519.privatePath, useAgent: false, knownHostsPath: "/dev/null",
                              connectTimeout: .milliseconds(1500))
        let clock = ContinuousClock()
        let start = clock.now
        let error = await expectSSHError { _ = try await SSHSession.open(ep, options: testOptions()) }
        let elapsed = clock.now - start
        // The bound is loose because the test runner shares two cores with other suites; without the
        // timeout, Linux would go on retrying the SYN for about two minutes.
        #expect(elapsed >= .milliseconds(1400) && elapsed < .seconds(15), "took \(elapsed)")
        #expect(error?.kind == .connectTimeout)
        #expect(error?.message == "host worker-9 (\(listener.address):\(listener.port)): connection timed out after 1.5s")
    }

    @Test("a listener that accepts but never speaks SSH fails within the connect timeout")
    func silentListener() async throws {
        try Requirements.check()
        let keys = try await Keys.load()
        let listener = try Loopback.silentListener()
        defer { close(listener.fd) }
        let ep = HostEndpoint(name: "worker-1", address: listener.address, port: listener.port, user: "root",
                              keyPath: keys.ed25519.privatePath, useAgent: false, knownHostsPath: "/dev/null",
                              connectTimeout: .seconds(2))
        let clock = ContinuousClock()
        let start = clock.now
        let error = await expectSSHError { _ = try await SSHSession.open(ep, options: testOptions()) }
        let elapsed = clock.now - start
        #expect(elapsed >= .seconds(2) && elapsed < .seconds(15), "took \(elapsed)")
        #expect(error?.kind == .connectTimeout)
        #expect(error?.message == "host worker-1 (\(listener.address):\(listener.port)): connection timed out after 2s")
    }

    @Test("an idle session sends SSH keepalives and stays usable")
    func keepalive() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start(logLevel: "DEBUG1")
        defer { server.stop() }
        var options = testOptions()
        options.keepaliveInterval = 1
        let s = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()), options: options)
        try await Task.sleep(for: .milliseconds(3500))
        #expect(server.log.contains("keepalive@libssh2.org"), "no keepalive reached sshd")
        #expect(try await s.run(ShellCommand(["echo", "awake"])).stdoutText == "awake\n")
        await s.close()

        // Keepalives off: an idle session simply waits.
        options.keepaliveInterval = 0
        let quiet = try await SSHSession.open(
            endpoint(server, key: keys.ed25519.privatePath, knownHosts: try server.knownHostsFile()), options: options)
        try await Task.sleep(for: .milliseconds(2500))
        #expect(try await quiet.run(ShellCommand(["echo", "still"])).stdoutText == "still\n")
        await quiet.close()
    }

    @Test("sockets have TCP keepalive (probing after 30 s) and no Nagle delay")
    func tcpOptions() async throws {
        let server = try await SSHD.start()
        defer { server.stop() }
        let fd = try Net.connect(host: server.address, port: server.port, deadline: .now + .seconds(5))
        defer { close(fd) }
        func option(_ level: Int32, _ name: Int32) -> Int32 {
            var value: Int32 = -1
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, level, name, &value, &length)
            return value
        }
        #expect(option(SOL_SOCKET, SO_KEEPALIVE) == 1)
        #expect(option(Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 30)
        #expect(option(Int32(IPPROTO_TCP), TCP_NODELAY) != 0)
    }

    @Test("DNS names are resolved")
    func resolution() throws {
        let addresses = try Net.resolve("localhost", port: 22).map(\.text)
        #expect(addresses.contains("127.0.0.1") || addresses.contains("::1"))
        #expect(try Net.resolve("127.0.1.7", port: 22).map(\.text) == ["127.0.1.7"])
        #expect(throws: Net.ConnectFailure.self) { try Net.resolve("no-such-host.invalid", port: 22) }
    }

    @Test("50 sessions at once, each on its own thread, all usable")
    func fiftySessions() async throws {
        let keys = try await Keys.load()
        let server = try await SSHD.start()
        defer { server.stop() }
        let knownHosts = try server.knownHostsFile()
        func threads() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0 }
        let threadsBefore = threads()
        let transport: any HostTransport = SSHTransport(options: testOptions())
        let peak = Notices()
        let results = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for i in 0..<50 {
                group.addTask {
                    let ep = endpoint(server, name: "host-\(i)", key: keys.ed25519.privatePath, knownHosts: knownHosts,
                                      timeout: .seconds(60))
                    let s = try await transport.connect(ep)
                    peak.add("\(threads())")
                    var last = ""
                    for j in 0..<3 {
                        last = try await s.run(ShellCommand(["echo", "\(i)-\(j)"])).stdoutText
                    }
                    await s.close()
                    return (i, last)
                }
            }
            var out: [Int: String] = [:]
            for try await (i, text) in group { out[i] = text }
            return out
        }
        #expect(results.count == 50)
        for i in 0..<50 { #expect(results[i] == "\(i)-2\n") }
        let most = peak.all.compactMap(Int.init).max() ?? 0
        #expect(most > threadsBefore + 10, "sessions run on threads of their own (peak \(most), before \(threadsBefore))")
        // Every session's thread has ended with its session.
        var threadsAfter = threads()
        for _ in 0..<50 where threadsAfter > threadsBefore + 4 {
            try await Task.sleep(for: .milliseconds(100))
            threadsAfter = threads()
        }
        #expect(threadsAfter <= threadsBefore + 4, "threads: \(threadsBefore) before, \(threadsAfter) after")
    }
}
