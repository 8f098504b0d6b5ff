import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// A fresh directory per test, removed afterwards.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "statestore-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func sampleState(_ name: String = "lab") -> ClusterState {
    var s = ClusterState(name: name, toolVersion: ToolVersion.current)
    s.cluster.kubernetesVersion = "1.34.1"
    s.cluster.endpoint = "127.0.0.11:6443"
    s.cluster.secrets["bootstrapToken"] = SecretRecord(value: Secret("abcdef.0123456789abcdef"),
                                                       expiresAt: Date(timeIntervalSince1970: 1_900_000_000))
    s.hosts["cp-1"] = HostRecord(address: "127.0.0.11", port: 22, role: .controlPlane, labels: ["a": "b"],
                                 steps: ["prepare": StepRecord(inputHash: "h1", finishedAt: Date(timeIntervalSince1970: 1_800_000_000))])
    let ms = Releases.metricsServer(ClusterPlan.Addon(enabled: true))[0]
    s.addons[ms.key] = AddonRecord(ms)
    s.manifests["Namespace//my-app"] = ManifestRecord(file: "apps/my-app.yaml", hash: "m")
    return s
}

func mode(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
}

struct Crash: Error {}

@Suite struct StateStoreTests {
    @Test func roundTripIncrementsSerialAndKeepsABackup() throws {
        let dir = TempDir()
        let path = dir.path + "/.bootstrap/lab.state.json"
        let store = StateStore(path: path)
        try store.lock(command: "test")
        #expect(try store.load(expectName: "lab") == nil)
        let first = try store.write(sampleState())
        #expect(first.serial == 1)
        var next = first
        next.hosts["cp-1"]?.steps["containerd"] = StepRecord(inputHash: "h2", finishedAt: Date(timeIntervalSince1970: 1_800_000_100))
        let second = try store.write(next)
        #expect(second.serial == 2)
        store.unlock()

        let reader = StateStore(path: path)
        let loaded = try #require(try reader.load(expectName: "lab"))
        #expect(loaded == second)
        #expect(loaded.cluster.secrets["bootstrapToken"]?.value.revealed == "abcdef.0123456789abcdef")
        let backup = try StateStore.decode(Data(contentsOf: URL(fileURLWithPath: path + ".backup")), path: "b")
        #expect(backup == first)
        #expect(mode(path) == 0o600)
        #expect(mode(path + ".backup") == 0o600)
        #expect(mode(dir.path + "/.bootstrap") == 0o700)
        // No temp files left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/.bootstrap").filter { $0.contains(".tmp-") }
        #expect(left.isEmpty)
    }

    @Test func serialNeverGoesBackwards() throws {
        let dir = TempDir()
        let store = StateStore(path: dir.path + "/s.json")
        try store.lock(command: "test")
        _ = try store.load(expectName: nil)
        let s = sampleState()
        let a = try store.write(s)
        let b = try store.write(s)   // a stale copy (serial 0) must still get a higher serial
        #expect(a.serial == 1 && b.serial == 2)
    }

    @Test func crashBeforeRenameLeavesTheOldStateIntact() throws {
        for phase in [StateStore.WritePhase.tempWritten, .backupLinked] {
            let dir = TempDir()
            let path = dir.path + "/lab.state.json"
            let store = StateStore(path: path)
            try store.lock(command: "test")
            _ = try store.load(expectName: "lab")
            let old = try store.write(sampleState())
            store.faultInjection = { p in if p == phase { throw Crash() } }
            var changed = old
            changed.hosts["worker-1"] = HostRecord(address: "127.0.0.12", port: 22, role: .worker)
            #expect(throws: Crash.self) { try store.write(changed) }
            store.unlock()
            let after = try #require(try StateStore(path: path).load(expectName: "lab"))
            #expect(after == old, "phase \(phase)")
            #expect(after.hosts["worker-1"] == nil)
        }
    }

    @Test func crashAfterRenameHasTheNewState() throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let store = StateStore(path: path)
        try store.lock(command: "test")
        _ = try store.load(expectName: "lab")
        var s = try store.write(sampleState())
        store.faultInjection = { p in if p == .renamed { throw Crash() } }
        s.toolVersion = "9.9.9"
        #expect(throws: Crash.self) { try store.write(s) }
        #expect(try StateStore(path: path).load(expectName: "lab")?.toolVersion == "9.9.9")
    }

    @Test func refusesANewerFormat() throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        var s = sampleState()
        s.formatVersion = ClusterState.currentFormatVersion + 1
        let data = try JSONEncoder.state.encode(s)
        try data.write(to: URL(fileURLWithPath: path))
        let store = StateStore(path: path)
        #expect(throws: StateError.newerFormat(path: path, found: ClusterState.currentFormatVersion + 1, supported: ClusterState.currentFormatVersion)) { try store.load(expectName: "lab") }
        // And is never overwritten.
        try store.lock(command: "test")
        #expect(throws: StateError.notLoaded(path: path)) { try store.write(sampleState()) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == data)
    }

    @Test func refusesACorruptFile() throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        for junk in ["{not json", "[1,2]", "{\"formatVersion\": 1}", ""] {
            try Data(junk.utf8).write(to: URL(fileURLWithPath: path))
            do {
                _ = try StateStore(path: path).load(expectName: "lab")
                Issue.record("loaded \(junk)")
            } catch let e as StateError {
                guard case .corrupt = e else { Issue.record("\(e)"); continue }
                #expect(e.description.contains("not valid bootstrap state"))
            }
            #expect(try String(contentsOf: URL(fileURLWithPath: path), encoding: .utf8) == junk)
        }
    }

    @Test func refusesAnotherClustersState() throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let w = StateStore(path: path)
        try w.lock(command: "test")
        _ = try w.load(expectName: nil)
        let written = try w.write(sampleState("other"))
        w.unlock()
        #expect(throws: StateError.wrongCluster(path: path, found: "other", expected: "lab")) {
            try StateStore(path: path).load(expectName: "lab")
        }
        #expect(throws: StateError.lineageMismatch(path: path, found: written.lineage, expected: "nope")) {
            try StateStore(path: path).load(expectName: "other", expectLineage: "nope")
        }
        // A state of another lineage is not written over this one.
        let s2 = StateStore(path: path)
        try s2.lock(command: "test")
        _ = try s2.load(expectName: "other")
        #expect(throws: StateError.self) { try s2.write(ClusterState(name: "other", toolVersion: "x")) }
    }

    @Test func writingNeedsTheLock() throws {
        let dir = TempDir()
        let store = StateStore(path: dir.path + "/s.json")
        #expect(throws: StateError.notLocked(path: dir.path + "/s.json")) { try store.write(sampleState()) }
    }

    @Test func secondWriterIsRefusedWithTheHoldersDetails() throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let a = StateStore(path: path)
        try a.lock(command: "bootstrap apply -f lab.yaml")
        let b = StateStore(path: path)
        do {
            try b.lock(command: "bootstrap apply")
            Issue.record("second lock succeeded")
        } catch let StateError.locked(_, holder) {
            #expect(holder?.pid == getpid())
            #expect(holder?.command == "bootstrap apply -f lab.yaml")
            #expect(holder?.hostname.isEmpty == false)
        }
        #expect(!b.isLocked)
        a.unlock()
        try b.lock(command: "bootstrap apply")
        #expect(b.isLocked)
        b.unlock()
    }

    @Test func lockTimeoutWaitsForTheHolder() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let a = StateStore(path: path)
        try a.lock(command: "first")
        // The holder lets go from a thread of its own: `lock` blocks its caller, and a task could be starved
        // of the cooperative pool's few threads by other tests doing the same.
        let released = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 0.3)
            a.unlock()
            released.signal()
        }
        let b = StateStore(path: path)
        let start = ContinuousClock.now
        try b.lock(command: "second", timeout: .seconds(5))
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(250))
        #expect(waited < .seconds(4))
        released.wait()
        b.unlock()
        // A short timeout still fails.
        try a.lock(command: "first")
        #expect(throws: StateError.self) { try b.lock(command: "second", timeout: .milliseconds(200)) }
        a.unlock()
    }

    @Test func forceUnlock() throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let store = StateStore(path: path)
        #expect(try store.forceUnlock(force: false) == .notLocked)
        // A lock file whose holder is gone (the kernel dropped the flock): removed.
        let dead = LockHolder(pid: 999_999, hostname: "elsewhere", command: "bootstrap apply",
                              startedAt: Date(timeIntervalSince1970: 1_800_000_000))
        try JSONEncoder.state.encode(dead).write(to: URL(fileURLWithPath: path + ".lock"))
        #expect(try store.forceUnlock(force: false) == .removedStale(dead))
        #expect(!FileManager.default.fileExists(atPath: path + ".lock"))
        // A live holder is refused without --force.
        let holder = StateStore(path: path)
        try holder.lock(command: "bootstrap apply")
        #expect(throws: StateError.self) { try store.forceUnlock(force: false) }
        guard case .removedLive(let h) = try store.forceUnlock(force: true) else {
            Issue.record("not removed")
            return
        }
        #expect(h?.command == "bootstrap apply")
        // After a forced unlock a new command can lock (a new lock file).
        let next = StateStore(path: path)
        try next.lock(command: "next")
        next.unlock()
        holder.unlock()
    }

    @Test func defaultPathIsBesideThePlan() {
        let p = ClusterPlan(metadata: .init(name: "lab"), spec: .init(kubernetes: .init(version: "1.34.1"), hosts: []),
                            source: PlanSource(path: "Plans/lab.yaml", baseDirectory: "/repo/Plans"))
        #expect(StateStore.defaultPath(for: p) == "/repo/Plans/.bootstrap/lab.state.json")
    }
}

@Suite struct StateDateTests {
    @Test func fastDateParserAgreesWithTheFormatter() {
        let f = ISO8601DateFormatter()
        for t in [0.0, 951_782_400, 1_700_000_000, 1_709_164_800, 4_102_444_799, 1_234_567_890] {
            let text = f.string(from: Date(timeIntervalSince1970: t))
            #expect(fastISO8601(text) == Date(timeIntervalSince1970: t), "\(text)")
        }
        #expect(fastISO8601("2024-13-01T00:00:00Z") == nil)
        #expect(fastISO8601("2024-01-01T00:00:00+01:00") == nil)
    }
}
