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
    @Test func roundTripIncrementsSerialAndKeepsABackup() async throws {
        let dir = TempDir()
        let path = dir.path + "/.bootstrap/lab.state.json"
        let store = StateStore(path: path)
        try await store.lock(command: "test")
        #expect(try await store.load(expectName: "lab") == nil)
        let first = try await store.write(sampleState())
        #expect(first.serial == 1)
        var next = first
        next.hosts["cp-1"]?.steps["containerd"] = StepRecord(inputHash: "h2", finishedAt: Date(timeIntervalSince1970: 1_800_000_100))
        let second = try await store.write(next)
        #expect(second.serial == 2)
        store.unlock()

        let reader = StateStore(path: path)
        let loaded = try #require(try await reader.load(expectName: "lab"))
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

    @Test func serialNeverGoesBackwards() async throws {
        let dir = TempDir()
        let store = StateStore(path: dir.path + "/s.json")
        try await store.lock(command: "test")
        _ = try await store.load(expectName: nil)
        let s = sampleState()
        let a = try await store.write(s)
        let b = try await store.write(s)   // a stale copy (serial 0) must still get a higher serial
        #expect(a.serial == 1 && b.serial == 2)
    }

    @Test func crashBeforeRenameLeavesTheOldStateIntact() async throws {
        for phase in [StateStore.WritePhase.tempWritten, .backupLinked] {
            let dir = TempDir()
            let path = dir.path + "/lab.state.json"
            let store = StateStore(path: path)
            try await store.lock(command: "test")
            _ = try await store.load(expectName: "lab")
            let old = try await store.write(sampleState())
            store.faultInjection = { p in if p == phase { throw Crash() } }
            var changed = old
            changed.hosts["worker-1"] = HostRecord(address: "127.0.0.12", port: 22, role: .worker)
            await #expect(throws: Crash.self) { try await store.write(changed) }
            store.unlock()
            let after = try #require(try await StateStore(path: path).load(expectName: "lab"))
            #expect(after == old, "phase \(phase)")
            #expect(after.hosts["worker-1"] == nil)
        }
    }

    @Test func crashAfterRenameHasTheNewState() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let store = StateStore(path: path)
        try await store.lock(command: "test")
        _ = try await store.load(expectName: "lab")
        var s = try await store.write(sampleState())
        store.faultInjection = { p in if p == .renamed { throw Crash() } }
        s.toolVersion = "9.9.9"
        await #expect(throws: Crash.self) { try await store.write(s) }
        #expect(try await StateStore(path: path).load(expectName: "lab")?.toolVersion == "9.9.9")
    }

    @Test func refusesANewerFormat() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        var s = sampleState()
        s.formatVersion = ClusterState.currentFormatVersion + 1
        let data = try JSONEncoder.state.encode(s)
        try data.write(to: URL(fileURLWithPath: path))
        let store = StateStore(path: path)
        await #expect(throws: StateError.newerFormat(path: path, found: ClusterState.currentFormatVersion + 1, supported: ClusterState.currentFormatVersion)) { try await store.load(expectName: "lab") }
        // And is never overwritten.
        try await store.lock(command: "test")
        await #expect(throws: StateError.notLoaded(path: path)) { try await store.write(sampleState()) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == data)
    }

    @Test func refusesACorruptFile() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        for junk in ["{not json", "[1,2]", "{\"formatVersion\": 1}", ""] {
            try Data(junk.utf8).write(to: URL(fileURLWithPath: path))
            do {
                _ = try await StateStore(path: path).load(expectName: "lab")
                Issue.record("loaded \(junk)")
            } catch let e as StateError {
                guard case .corrupt = e else { Issue.record("\(e)"); continue }
                #expect(e.description.contains("not valid bootstrap state"))
            }
            #expect(try String(contentsOf: URL(fileURLWithPath: path), encoding: .utf8) == junk)
        }
    }

    @Test func refusesAnotherClustersState() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let w = StateStore(path: path)
        try await w.lock(command: "test")
        _ = try await w.load(expectName: nil)
        let written = try await w.write(sampleState("other"))
        w.unlock()
        await #expect(throws: StateError.wrongCluster(path: path, found: "other", expected: "lab")) {
            try await StateStore(path: path).load(expectName: "lab")
        }
        await #expect(throws: StateError.lineageMismatch(path: path, found: written.lineage, expected: "nope")) {
            try await StateStore(path: path).load(expectName: "other", expectLineage: "nope")
        }
        // A state of another lineage is not written over this one.
        let s2 = StateStore(path: path)
        try await s2.lock(command: "test")
        _ = try await s2.load(expectName: "other")
        await #expect(throws: StateError.self) { try await s2.write(ClusterState(name: "other", toolVersion: "x")) }
    }

    @Test func writingNeedsTheLock() async throws {
        let dir = TempDir()
        let store = StateStore(path: dir.path + "/s.json")
        await #expect(throws: StateError.notLocked(path: dir.path + "/s.json")) { try await store.write(sampleState()) }
    }

    @Test func secondWriterIsRefusedWithTheHoldersDetails() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let a = StateStore(path: path)
        try await a.lock(command: "bootstrap apply -f lab.yaml")
        let b = StateStore(path: path)
        do {
            try await b.lock(command: "bootstrap apply")
            Issue.record("second lock succeeded")
        } catch let StateError.locked(_, holder) {
            #expect(holder?.pid == getpid())
            #expect(holder?.command == "bootstrap apply -f lab.yaml")
            #expect(holder?.hostname.isEmpty == false)
        }
        #expect(!b.isLocked)
        a.unlock()
        try await b.lock(command: "bootstrap apply")
        #expect(b.isLocked)
        b.unlock()
    }

    @Test func lockTimeoutWaitsForTheHolder() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let a = StateStore(path: path)
        try await a.lock(command: "first")
        let releaser = Task {
            try await Task.sleep(for: .milliseconds(300))
            a.unlock()
        }
        let b = StateStore(path: path)
        let start = ContinuousClock.now
        try await b.lock(command: "second", timeout: .seconds(5))
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(250))
        #expect(waited < .seconds(4))
        try await releaser.value
        b.unlock()
        // A short timeout still fails.
        try await a.lock(command: "first")
        await #expect(throws: StateError.self) { try await b.lock(command: "second", timeout: .milliseconds(200)) }
        a.unlock()
    }

    @Test func forceUnlock() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let store = StateStore(path: path)
        #expect(try await store.forceUnlock(force: false) == .notLocked)
        // A lock file whose holder is gone (the kernel dropped the flock): removed.
        let dead = LockHolder(pid: 999_999, hostname: "elsewhere", command: "bootstrap apply",
                              startedAt: Date(timeIntervalSince1970: 1_800_000_000))
        try JSONEncoder.state.encode(dead).write(to: URL(fileURLWithPath: path + ".lock"))
        #expect(try await store.forceUnlock(force: false) == .removedStale(dead))
        #expect(!FileManager.default.fileExists(atPath: path + ".lock"))
        // A holder alive on this machine is refused, with --force too: two writers would follow.
        let holder = StateStore(path: path)
        try await holder.lock(command: "bootstrap apply")
        await #expect(throws: StateError.self) { try await store.forceUnlock(force: false) }
        do {
            _ = try await store.forceUnlock(force: true)
            Issue.record("a live holder on this machine was unlocked")
        } catch let StateError.holderAlive(_, h) {
            #expect(h.pid == getpid() && h.command == "bootstrap apply")
        }
        #expect(FileManager.default.fileExists(atPath: path + ".lock"))
        holder.unlock()
    }

    @Test func forceUnlockRemovesTheLockOfAHolderOnAnotherMachineOnlyWithForce() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        // The flock is held (here by a store of this process), but the file names a holder elsewhere, as
        // when the state lives on a shared file system.
        let holder = StateStore(path: path)
        try await holder.lock(command: "bootstrap apply")
        let remote = LockHolder(pid: 4242, hostname: "ops-box-\(UUID().uuidString)", command: "bootstrap apply",
                                startedAt: Date(timeIntervalSince1970: 1_800_000_000))
        try JSONEncoder.state.encode(remote).write(to: URL(fileURLWithPath: path + ".lock"))
        let store = StateStore(path: path)
        await #expect(throws: StateError.self) { try await store.forceUnlock(force: false) }
        #expect(try await store.forceUnlock(force: true) == .removedLive(remote))
        let next = StateStore(path: path)
        try await next.lock(command: "next")
        next.unlock()
        holder.unlock()
    }

    @Test func aSecondWriterIsDetectedAndNotOverwritten() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let a = StateStore(path: path)
        try await a.lock(command: "first")
        _ = try await a.load(expectName: "lab")
        let mine = try await a.write(sampleState())
        // Another writer (its lock removed from under the first) replaces the file.
        let b = StateStore(path: path)
        unlink(path + ".lock")  // what `force-unlock --force` did before it refused live holders
        try await b.lock(command: "second")
        _ = try await b.load(expectName: "lab")
        let theirs = try await b.write(mine)
        #expect(theirs.serial == mine.serial + 1)
        do {
            try await a.write(mine)
            Issue.record("the first writer overwrote the second's state")
        } catch let StateError.replacedByAnotherWriter(_, last, found) {
            #expect(last == mine.serial && found == theirs.serial)
        }
        #expect(try await StateStore(path: path).load(expectName: "lab")?.serial == theirs.serial)
        // The first writer also notices a state that appeared where it saw none.
        let dir2 = TempDir()
        let c = StateStore(path: dir2.path + "/s.json")
        try await c.lock(command: "x")
        _ = try await c.load(expectName: nil)
        try JSONEncoder.state.encode(sampleState()).write(to: URL(fileURLWithPath: dir2.path + "/s.json"))
        await #expect(throws: StateError.self) { try await c.write(sampleState()) }
        a.unlock()
        b.unlock()
        c.unlock()
    }

    @Test func takingTheLockTightensLooserFilesAndTheBootstrapDirectory() async throws {
        let dir = TempDir()
        let bdir = dir.path + "/.bootstrap"
        let path = bdir + "/lab.state.json"
        let first = StateStore(path: path)
        try await first.lock(command: "x")
        _ = try await first.load(expectName: "lab")
        let s = sampleState()
        try await first.write(s)
        try await first.write(s)
        first.unlock()
        for p in [bdir, path, path + ".backup", path + ".lock"] { chmod(p, 0o755) }
        let store = StateStore(path: path)
        try await store.lock(command: "y")
        #expect(mode(bdir) == 0o700)
        #expect(mode(path) == 0o600 && mode(path + ".backup") == 0o600 && mode(path + ".lock") == 0o600)
        store.unlock()
        // A directory the user chose is left as it is.
        let own = TempDir()
        chmod(own.path, 0o755)
        let other = StateStore(path: own.path + "/lab.state.json")
        try await other.lock(command: "z")
        #expect(mode(own.path) == 0o755)
        other.unlock()
    }

    @Test func defaultPathIsBesideThePlan() {
        let p = ClusterPlan(metadata: .init(name: "lab"), spec: .init(kubernetes: .init(version: "1.34.1"), hosts: []),
                            source: PlanSource(path: "Plans/lab.yaml", baseDirectory: "/repo/Plans"))
        #expect(StateStore.defaultPath(for: p) == "/repo/Plans/.bootstrap/lab.state.json")
    }
}
