import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// `Backup.run` against scripted control planes: which host it picks, what it downloads and removes, what it
/// refuses.
struct BackupEngineTests {
    final class Host: @unchecked Sendable {
        let lock = NSLock()
        var scripts: [String] = []
        var downloads: [String] = []
        var statusOutput = "{\"hash\":1,\"revision\":7,\"totalKey\":12,\"totalSize\":4096,\"version\":\"3.6.0\"}"
        var statusExit: Int32 = 0
        var installExit: Int32 = 0
        var all: [String] { lock.withLock { scripts } }
    }

    final class Session: HostSession, @unchecked Sendable {
        let endpoint: HostEndpoint
        let host: Host
        init(endpoint: HostEndpoint, host: Host) {
            self.endpoint = endpoint
            self.host = host
        }

        func run(_ command: ShellCommand, stdin: Data?, timeout: Duration?, output: OutputHandler?) async throws -> CommandResult {
            let s = command.script
            host.lock.withLock { host.scripts.append(s) }
            if s.contains("snapshot save") {
                // A guarded command: the tools' log lines and the status on stdout.
                return CommandResult(exitStatus: host.statusExit,
                                     stdout: Data("{\"level\":\"info\",\"msg\":\"saved\"}\n\(host.statusOutput)\n".utf8))
            }
            if s.contains("SHA256SUMS") { return CommandResult(exitStatus: host.installExit, stderr: Data("sha256sum: WARNING: 1 computed checksum did NOT match\n".utf8)) }
            if s.contains("member list") { return CommandResult(exitStatus: 0, stdout: Data("cp-1\ncp-2\n".utf8)) }
            if s.contains("etcd.yaml") { return CommandResult(exitStatus: 0, stdout: Data("3.6.4\n".utf8)) }
            if s.contains("rm -f") { return CommandResult(exitStatus: 0) }
            return CommandResult(exitStatus: 127)
        }

        func upload(_ data: Data, to path: String, mode: Int) async throws {}

        func download(_ path: String) async throws -> Data {
            host.lock.withLock { host.downloads.append(path) }
            return Data("content of \(path)\n".utf8)
        }

        func close() async {}
    }

    struct Transport: HostTransport {
        let hosts: [String: Host]
        var unreachable: Set<String> = []
        func connect(_ endpoint: HostEndpoint) async throws -> any HostSession {
            if unreachable.contains(endpoint.name) { throw EngineError.unreachable(host: endpoint.name, reason: "connection refused") }
            return Session(endpoint: endpoint, host: hosts[endpoint.name]!)
        }
    }

    static let plan = ApplyEngineTests.plan(workers: 1, controlPlanes: 3)

    static func state() -> ClusterState {
        var s = ClusterState(name: "lab", lineage: "lineage-1", toolVersion: "test")
        s.cluster.kubernetesVersion = "1.34.1"
        for h in plan.spec.hosts { s.hosts[h.name] = HostRecord(address: h.address, port: 22, role: h.role) }
        return s
    }

    static let resolve: EndpointResolver = { n, a, p in
        HostEndpoint(name: n, address: a, port: p, user: "root", knownHostsPath: "/dev/null")
    }

    static func tempPath() -> String { NSTemporaryDirectory() + "bootstrap-backup-test-\(UUID().uuidString)/x.bootstrap-backup" }

    @Test func takesTheSnapshotOnTheFirstControlPlaneThatAnswers() async throws {
        let hosts = ["cp-1": Host(), "cp-2": Host(), "cp-3": Host(), "worker-1": Host()]
        let path = Self.tempPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let r = try await Backup.run(plan: Self.plan, state: Self.state(),
                                     transport: Transport(hosts: hosts, unreachable: ["cp-1"]),
                                     resolve: Self.resolve, path: path, now: now)
        #expect(r.manifest.takenOn == "cp-2")
        #expect(hosts["cp-3"]!.all.isEmpty && hosts["worker-1"]!.all.isEmpty)
        let cp2 = hosts["cp-2"]!
        // The remote snapshot is downloaded, then removed.
        let save = try #require(cp2.all.first { $0.contains("snapshot save") })
        let remote = try #require(cp2.downloads.first)
        #expect(remote.hasPrefix("/var/lib/bootstrap/backup/snapshot-") && save.contains(remote))
        #expect(cp2.all.last?.contains("rm -f \(remote)") == true)
        #expect(Set(cp2.downloads.dropFirst()) == Set(EtcdRecipes.pkiFiles.map { "/etc/kubernetes/pki/\($0)" }))
        // The archive: mode 0600, readable, what the result says.
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        #expect(attrs[.posixPermissions] as? Int == 0o600)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let (m, entries) = try BackupArchive.decode(data)
        #expect(m.cluster == "lab" && m.lineage == "lineage-1" && m.kubernetesVersion == "1.34.1")
        #expect(m.etcdVersion == "3.6.4" && m.members == ["cp-1", "cp-2"] && m.createdAt == now)
        #expect(entries[BackupArchive.snapshotEntry] == Data("content of \(remote)\n".utf8))
        #expect(entries["pki/sa.key"] == Data("content of /etc/kubernetes/pki/sa.key\n".utf8))
        #expect(r.record == BackupRecord(path: path, createdAt: now, size: data.count, sha256: Hashing.sha256(data)))
        // A second backup to the same file is refused before anything runs.
        let before = cp2.all.count
        do {
            _ = try await Backup.run(plan: Self.plan, state: Self.state(), transport: Transport(hosts: hosts),
                                     resolve: Self.resolve, path: path, now: now)
            Issue.record("an existing archive was replaced")
        } catch let e as BackupError {
            #expect(e.description.contains("already exists"), "\(e)")
        }
        #expect(cp2.all.count == before && hosts["cp-1"]!.all.isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == data)
        // etcdctl of the cluster's etcd, from the release tarball, checked.
        let install = try #require(cp2.all.first { $0.contains("SHA256SUMS") })
        #expect(install.contains("https://github.com/etcd-io/etcd/releases/download/v3.6.4/"))
        #expect(install.contains("sha256sum --check"))
    }

    @Test func noControlPlaneAnswers() async throws {
        let hosts = ["cp-1": Host(), "cp-2": Host(), "cp-3": Host(), "worker-1": Host()]
        let path = Self.tempPath()
        await #expect(throws: BackupError.self) {
            try await Backup.run(plan: Self.plan, state: Self.state(),
                                 transport: Transport(hosts: hosts, unreachable: ["cp-1", "cp-2", "cp-3"]),
                                 resolve: Self.resolve, path: path)
        }
        do {
            _ = try await Backup.run(plan: Self.plan, state: Self.state(),
                                     transport: Transport(hosts: hosts, unreachable: ["cp-1", "cp-2", "cp-3"]),
                                     resolve: Self.resolve, path: path)
        } catch let e as BackupError {
            #expect(e.description.contains("no control plane answered") && e.description.contains("cp-3"), "\(e)")
            // Each host named once: `cp-1: unreachable: connection refused`, not `cp-1: cp-1: …`.
            #expect(e.description.contains("cp-1: unreachable: connection refused; cp-2: unreachable:"), "\(e)")
            for h in ["cp-1", "cp-2", "cp-3"] { #expect(e.description.components(separatedBy: h).count == 2, "\(e)") }
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(hosts["worker-1"]!.all.isEmpty)
    }

    @Test func aFailedInstallMovesOnAndARejectedSnapshotIsRemoved() async throws {
        let hosts = ["cp-1": Host(), "cp-2": Host(), "cp-3": Host(), "worker-1": Host()]
        hosts["cp-1"]!.installExit = 1
        hosts["cp-2"]!.statusExit = 1
        hosts["cp-2"]!.statusOutput = "Error: invalid database"
        let path = Self.tempPath()
        do {
            _ = try await Backup.run(plan: Self.plan, state: Self.state(), transport: Transport(hosts: hosts),
                                     resolve: Self.resolve, path: path)
            Issue.record("a rejected snapshot was accepted")
        } catch let e as BackupError {
            #expect(e.description.contains("invalid database"), "\(e)")
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(hosts["cp-1"]!.all.contains { $0.contains("SHA256SUMS") })
        #expect(!hosts["cp-1"]!.all.contains { $0.contains("snapshot save") })
        let save = try #require(hosts["cp-2"]!.all.first { $0.contains("snapshot save") })
        #expect(hosts["cp-2"]!.downloads.isEmpty)
        let remove = try #require(hosts["cp-2"]!.all.last)
        #expect(remove.contains("rm -f /var/lib/bootstrap/backup/snapshot-") && save.contains(String(remove.split(separator: " ").last!)))
    }
}
