import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// `Restore` against scripted hosts: what it refuses before anything runs, and the order of the procedure across
/// hosts (all control planes stopped before the restore, the others re-joined one at a time, then the workers).
struct RestoreEngineTests {
    /// Every command and upload of every host, in order, as `HOST: WHAT`.
    final class Log: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String] = []
        var statusExit: Int32 = 0
        func add(_ s: String) { lock.withLock { lines.append(s) } }
        var all: [String] { lock.withLock { lines } }
    }

    final class Session: HostSession, @unchecked Sendable {
        let endpoint: HostEndpoint
        let log: Log
        init(endpoint: HostEndpoint, log: Log) {
            self.endpoint = endpoint
            self.log = log
        }

        func run(_ command: ShellCommand, stdin: Data?, timeout: Duration?, output: OutputHandler?) async throws -> CommandResult {
            let s = command.script, h = endpoint.name
            func ok(_ what: String, _ out: String = "") -> CommandResult {
                log.add("\(h): \(what)")
                return CommandResult(exitStatus: 0, stdout: Data(out.utf8))
            }
            if s.contains("SHA256SUMS") { return ok("install etcdctl") }
            if s.contains("etcdutl snapshot restore") { return ok("restore") }
            if s.contains("etcdutl snapshot status") {
                log.add("\(h): status")
                return CommandResult(exitStatus: log.statusExit, stdout: Data("{\"hash\":1,\"revision\":9,\"totalKey\":12,\"totalSize\":4096}\n".utf8),
                                     stderr: Data("Error: snapshot file integrity check failed\n".utf8))
            }
            if s.contains("ss -Hltn") { return ok("stop") }
            if s.contains("initial-cluster-state=existing") { return ok("rejoin") }
            if s.contains("echo \"$name $peer\"") {
                let n = h, a = h == "cp-2" ? "10.0.0.2" : "10.0.0.3"
                return ok("member", "\(n) https://\(a):2380\n")
            }
            if s.contains("member add") {
                let name = s.contains("cp-2") ? "cp-2" : "cp-3"
                return ok("member add \(name)", "cp-1=https://10.0.0.1:2380,\(name)=https://10.0.0.\(name.suffix(1)):2380\n")
            }
            if s.contains("$2 == \"started\"") { return ok("member started") }
            if s.contains("/readyz") { return ok("readyz") }
            if s.contains("get nodes -o json") {
                let items = ["cp-1", "cp-2", "cp-3", "worker-1"].map {
                    "{\"metadata\":{\"name\":\"\($0)\"},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}"
                }
                return ok("nodes", "{\"items\":[\(items.joined(separator: ","))]}")
            }
            if s.contains("list -A -o json") { return ok("helm list", "[]") }
            if s.contains("systemctl restart kubelet") { return ok("restart kubelet") }
            if s.contains("/etc/kubernetes/manifests/") { return ok("start") }
            if s.contains("rm -f") { return ok("rm") }
            if s.contains("mkdir -p -m 700") { return ok("mkdir") }
            return ok("other")
        }

        func upload(_ data: Data, to path: String, mode: Int) async throws { log.add("\(endpoint.name): upload \(path) \(String(mode, radix: 8))") }
        func download(_ path: String) async throws -> Data { Data() }
        func close() async {}
    }

    struct Transport: HostTransport {
        let log: Log
        var unreachable: Set<String> = []
        func connect(_ endpoint: HostEndpoint) async throws -> any HostSession {
            if unreachable.contains(endpoint.name) { throw EngineError.unreachable(host: endpoint.name, reason: "connection refused") }
            return Session(endpoint: endpoint, log: log)
        }
    }

    static let plan = ApplyEngineTests.plan(workers: 1, controlPlanes: 3)
    static let state = BackupEngineTests.state()

    static func archive(lineage: String = "lineage-1") -> Restore.Archive {
        let m = BackupManifest(cluster: "lab", lineage: lineage, kubernetesVersion: "1.34.1", etcdVersion: "3.6.4",
                               members: ["cp-1", "cp-2", "cp-3"], takenOn: "cp-1", createdAt: Date(timeIntervalSince1970: 1_800_000_000))
        var entries: [String: Data] = [BackupArchive.snapshotEntry: Data("snap".utf8)]
        for f in EtcdRecipes.pkiFiles { entries["pki/" + f] = Data(f.utf8) }
        return Restore.Archive(path: "/b/x.bootstrap-backup", manifest: m, entries: entries, sha256: "abcdef0123456789abcdef", size: 100)
    }

    static func file(_ data: Data) throws -> String {
        let path = NSTemporaryDirectory() + "bootstrap-restore-test-\(UUID().uuidString).bootstrap-backup"
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func theProcedureInOrder() async throws {
        let log = Log()
        let p = try await Restore.prepare(Self.archive(), plan: Self.plan, state: Self.state, transport: Transport(log: log),
                                          resolve: BackupEngineTests.resolve)
        // Preparing only checks the snapshot on the first control plane.
        #expect(log.all == ["cp-1: install etcdctl", "cp-1: mkdir",
                            "cp-1: upload /var/lib/bootstrap/backup/restore-abcdef0123456789.db 600", "cp-1: status"])
        let restored = try await Restore.run(Self.archive(), p, state: Self.state, now: { Date(timeIntervalSince1970: 1_800_000_100) })
        let steps = log.all.dropFirst(4).filter { !$0.contains("upload") }
        #expect(Array(steps) == [
            "cp-1: stop", "cp-2: stop", "cp-3: stop",
            "cp-1: restore", "cp-1: start", "cp-1: readyz",
            "cp-2: member", "cp-1: member add cp-2", "cp-2: rejoin", "cp-1: member started", "cp-2: readyz",
            "cp-3: member", "cp-1: member add cp-3", "cp-3: rejoin", "cp-1: member started", "cp-3: readyz",
            "worker-1: restart kubelet", "cp-1: nodes", "cp-1: helm list", "cp-1: other", "cp-1: rm",
        ])
        // The backup's PKI goes to the first control plane only, keys 0600.
        let uploads = log.all.filter { $0.contains("upload /etc/kubernetes/pki/") }
        #expect(uploads.count == EtcdRecipes.pkiFiles.count && uploads.allSatisfy { $0.hasPrefix("cp-1: ") })
        #expect(uploads.contains("cp-1: upload /etc/kubernetes/pki/ca.key 600") && uploads.contains("cp-1: upload /etc/kubernetes/pki/ca.crt 644"))
        #expect(restored.restores.map(\.restoredOn) == ["cp-1"])
        #expect(restored.restores.first?.snapshotCreatedAt == Date(timeIntervalSince1970: 1_800_000_000))
    }

    @Test func anUnreachableHostOrABadSnapshotChangesNothing() async throws {
        let log = Log()
        do {
            _ = try await Restore.prepare(Self.archive(), plan: Self.plan, state: Self.state,
                                          transport: Transport(log: log, unreachable: ["worker-1"]), resolve: BackupEngineTests.resolve)
            Issue.record("a restore with an unreachable host was not refused")
        } catch let e as RestoreError {
            #expect(e.description.contains("not reachable: worker-1") && !e.badInput, "\(e)")
        }
        #expect(log.all.isEmpty)

        log.statusExit = 1
        do {
            _ = try await Restore.prepare(Self.archive(), plan: Self.plan, state: Self.state, transport: Transport(log: log),
                                          resolve: BackupEngineTests.resolve)
            Issue.record("a snapshot etcdutl rejects was not refused")
        } catch let e as RestoreError {
            #expect(e.description.contains("integrity check failed") && e.description.contains("Nothing was changed"), "\(e)")
        }
        #expect(log.all.last == "cp-1: rm" && !log.all.contains { $0.contains("stop") })
    }

    @Test func openRefusesBadArchivesBeforeConnecting() async throws {
        let m = Self.archive().manifest
        let entries = Self.archive().entries.sorted { $0.key < $1.key }.map { (name: $0.key, data: $0.value) }
        let good = BackupArchive.encode(m, entries: entries)
        let path = try Self.file(good)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let a = try await Restore.open(path: path, plan: Self.plan, state: Self.state)
        #expect(a.sha256 == Hashing.sha256(good) && a.entries.count == entries.count)

        var other = m
        other.lineage = "lineage-2"
        var cut = good.prefix(good.count / 2)
        cut.append(Data())
        var lacking = entries
        lacking.removeAll { $0.name == "pki/sa.key" }
        for (data, words) in [(good.prefix(good.count / 2), "truncated"), (BackupArchive.encode(other, entries: entries), "another cluster"),
                              (BackupArchive.encode(m, entries: lacking), "lacks pki/sa.key"), (Data("hello\n".utf8), "not a bootstrap backup")] {
            let p = try Self.file(Data(data))
            defer { try? FileManager.default.removeItem(atPath: p) }
            do {
                _ = try await Restore.open(path: p, plan: Self.plan, state: Self.state)
                Issue.record("\(words): accepted")
            } catch let e as RestoreError {
                #expect(e.badInput && e.description.contains(words), "\(e)")
            }
        }
        do {
            _ = try await Restore.open(path: path + ".missing", plan: Self.plan, state: Self.state)
            Issue.record("a missing file was accepted")
        } catch let e as RestoreError {
            #expect(e.badInput && e.description.contains("cannot read"), "\(e)")
        }
    }
}
