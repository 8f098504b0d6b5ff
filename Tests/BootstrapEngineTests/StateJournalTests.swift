import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// The journal of finished steps beside the state file: appended and fsynced per grouped write, read on top
/// of the file by every load, folded into the file at the end of a run and by a locked load.
@Suite struct StateJournalTests {
    static let at = Date(timeIntervalSince1970: 1_800_000_500)

    /// A locked store with a state file (serial 1) for `sampleState()`, and that state's lineage.
    func storeWithFile(_ dir: TempDir) async throws -> (StateStore, String) {
        let store = StateStore(path: dir.path + "/.bootstrap/lab.state.json")
        try await store.lock(command: "test")
        _ = try await store.load(expectName: "lab")
        let state = sampleState()
        try await store.write(state)
        return (store, state.lineage)
    }

    func step(_ name: String, _ hash: String = "j") -> StateChange {
        .hostStep(host: "cp-1", step: name, record: StepRecord(inputHash: hash, finishedAt: Self.at))
    }

    func fileState(_ path: String) throws -> ClusterState {
        try StateStore.decode(Data(contentsOf: URL(fileURLWithPath: path)), path: path)
    }

    @Test func appendedRecordsAreReadOnTopOfTheFileByAnyLoad() async throws {
        let dir = TempDir()
        let (store, lineage) = try await storeWithFile(dir)
        #expect(try await store.append([step("containerd")], lineage: lineage, serial: 1) == 2)
        #expect(try await store.append([step("kubernetes-repo"), .clusterStep(step: "helm", record: StepRecord(inputHash: "c", finishedAt: Self.at))],
                                       lineage: lineage, serial: 2) == 3)
        // The file itself is untouched; the journal is private.
        #expect(try fileState(store.path).serial == 1)
        #expect(mode(store.journalPath) == 0o600)

        let reader = StateStore(path: store.path)  // no lock: reads, folds nothing
        let loaded = try #require(try await reader.load(expectName: "lab"))
        #expect(loaded.serial == 3)
        #expect(loaded.hosts["cp-1"]?.steps["containerd"]?.inputHash == "j")
        #expect(loaded.hosts["cp-1"]?.steps["kubernetes-repo"] != nil)
        #expect(loaded.cluster.steps["helm"]?.inputHash == "c")
        #expect(loaded.hosts["cp-1"]?.steps["prepare"]?.inputHash == "h1")
        #expect(FileManager.default.fileExists(atPath: store.journalPath))
        store.unlock()
    }

    @Test func aRecordCutShortByACrashIsIgnoredAndDroppedBeforeTheNextAppend() async throws {
        let dir = TempDir()
        let (store, lineage) = try await storeWithFile(dir)
        _ = try await store.append([step("containerd")], lineage: lineage, serial: 1)
        store.unlock()
        // A kill -9 in the middle of the next append: half a line, no newline.
        let whole = try Data(contentsOf: URL(fileURLWithPath: store.journalPath))
        let half = whole.prefix(whole.count / 2)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: store.journalPath))
        try h.seekToEnd()
        try h.write(contentsOf: half)
        try h.close()

        let reader = StateStore(path: store.path)
        let loaded = try #require(try await reader.load(expectName: "lab"))
        #expect(loaded.serial == 2)
        #expect(loaded.hosts["cp-1"]?.steps["containerd"] != nil)

        // The next run: its locked load folds the good record into the file and removes the journal.
        let next = StateStore(path: store.path)
        try await next.lock(command: "test")
        let folded = try #require(try await next.load(expectName: "lab"))
        #expect(folded == loaded)
        #expect(try fileState(store.path) == loaded)  // the same serial: folding is no new change
        #expect(!FileManager.default.fileExists(atPath: store.journalPath))
        #expect(try await next.append([step("kubernetes-repo")], lineage: lineage, serial: 2) == 3)
        let again = try #require(try await StateStore(path: store.path).load(expectName: "lab"))
        #expect(again.serial == 3 && again.hosts["cp-1"]?.steps["kubernetes-repo"] != nil)
        next.unlock()
    }

    @Test func aDamagedRecordBeforeGoodOnesIsRefused() async throws {
        let dir = TempDir()
        let (store, lineage) = try await storeWithFile(dir)
        _ = try await store.append([step("containerd")], lineage: lineage, serial: 1)
        _ = try await store.append([step("kubernetes-repo")], lineage: lineage, serial: 2)
        store.unlock()
        var text = try String(contentsOfFile: store.journalPath, encoding: .utf8)
        text = "{not json\n" + text
        try text.write(toFile: store.journalPath, atomically: false, encoding: .utf8)
        await #expect(throws: StateError.self) { _ = try await StateStore(path: store.path).load(expectName: "lab") }
    }

    @Test func recordsOfAnEarlierFileAreNotAppliedAgain() async throws {
        let dir = TempDir()
        let (store, lineage) = try await storeWithFile(dir)
        _ = try await store.append([step("containerd", "old")], lineage: lineage, serial: 1)
        let stale = try Data(contentsOf: URL(fileURLWithPath: store.journalPath))
        // A whole write (serial 3) takes the journal in; a crash kept the journal (its removal never happened).
        var s = try #require(try await StateStore(path: store.path).load(expectName: "lab"))
        s.hosts["cp-1"]?.steps["containerd"] = StepRecord(inputHash: "new", finishedAt: Self.at)
        let written = try await store.write(s)
        #expect(written.serial == 3)
        #expect(!FileManager.default.fileExists(atPath: store.journalPath))
        try stale.write(to: URL(fileURLWithPath: store.journalPath))
        store.unlock()
        let loaded = try #require(try await StateStore(path: store.path).load(expectName: "lab"))
        #expect(loaded.serial == 3)
        #expect(loaded.hosts["cp-1"]?.steps["containerd"]?.inputHash == "new")
    }

    @Test func appendingNeedsTheLockTheLoadAndTheSameFile() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let state = sampleState()
        let lineage = state.lineage
        await #expect(throws: StateError.notLocked(path: path)) {
            _ = try await StateStore(path: path).append([step("containerd")], lineage: lineage, serial: 0)
        }
        // Nothing on disk yet: the state must be written whole first.
        let store = StateStore(path: path)
        try await store.lock(command: "test")
        _ = try await store.load(expectName: "lab")
        #expect(try await store.append([step("containerd")], lineage: lineage, serial: 0) == nil)
        try await store.write(state)
        // Another writer replaced the file: refused, not journaled on top of it.
        let other = path + ".other"
        try FileManager.default.copyItem(atPath: path, toPath: other)
        #expect(rename(other, path) == 0)
        await #expect(throws: StateError.replacedByAnotherWriter(path: path, lastSerial: 1, foundSerial: 1)) {
            _ = try await store.append([self.step("containerd")], lineage: lineage, serial: 1)
        }
        #expect(!FileManager.default.fileExists(atPath: store.journalPath))
        store.unlock()
    }

    @Test func aRunJournalsItsStepsAndFoldsThemAtTheEnd() async throws {
        let dir = TempDir()
        let (store, _) = try await storeWithFile(dir)
        let initial = try #require(try await StateStore(path: store.path).load(expectName: "lab"))
        let run = RunState(state: initial, store: store)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in ["containerd", "kubernetes-repo", "kubernetes-packages"] {
                group.addTask { try await run.recordStep(host: "cp-1", step: StepName(rawValue: name)!, inputHash: "x", at: Self.at) }
            }
            try await group.waitForAll()
        }
        try await run.recordClusterStep(.helm, inputHash: "y", at: Self.at)
        // On disk before the run ends: the file as it was, the steps in the journal.
        #expect(try fileState(store.path).serial == 1)
        let midway = try #require(try await StateStore(path: store.path).load(expectName: "lab"))
        #expect(midway == (await run.state))
        try await run.checkpoint()
        let end = await run.state
        #expect(try fileState(store.path) == end)
        #expect(end.serial == midway.serial)
        #expect(!FileManager.default.fileExists(atPath: store.journalPath))
        // A run that changed nothing leaves everything as it was.
        try await RunState(state: end, store: store).checkpoint()
        #expect(try fileState(store.path).serial == end.serial)
        store.unlock()
    }

    @Test func aWholeWriteAfterJournalledStepsCarriesThemAll() async throws {
        let dir = TempDir()
        let (store, _) = try await storeWithFile(dir)
        let initial = try #require(try await StateStore(path: store.path).load(expectName: "lab"))
        let run = RunState(state: initial, store: store)
        try await run.recordStep(host: "cp-1", step: .containerd, inputHash: "x", at: Self.at)
        // The cluster's record and a release: journaled too.
        try await run.update {
            $0.cluster.caCertHash = "sha256:ab"
            $0.addons = [:]
        }
        #expect(try fileState(store.path).serial == 1)
        let journaled = try #require(try await StateStore(path: store.path).load(expectName: "lab"))
        #expect(journaled == (await run.state))
        // The manifests have no journal record: the state is written whole, the journal folded in.
        try await run.update { $0.manifests = [:] }
        #expect(!FileManager.default.fileExists(atPath: store.journalPath))
        let file = try fileState(store.path)
        #expect(file.hosts["cp-1"]?.steps["containerd"] != nil && file.cluster.caCertHash == "sha256:ab")
        #expect(file.manifests.isEmpty && file.addons.isEmpty)
        #expect(file == (await run.state))
        store.unlock()
    }
}

/// With the real store (in the serialized apply suite: the fake cluster is shared).
extension ApplyEngineTests {
    @Test func anApplyJournalsItsStepsAndLeavesThemAllInTheStateFile() async throws {
        let dir = TempDir()
        let plan = Self.plan()
        let rig = Rig(plan: plan)
        let store = StateStore(path: dir.path + "/lab.state.json")
        try await store.lock(command: "test")
        defer { store.unlock() }
        _ = try await store.load(expectName: "lab")
        let run = RunState(state: ClusterState(name: "lab", toolVersion: "t"), store: store)
        let engine = ApplyEngine(
            plan: plan, runState: run, transport: FakeTransport(hosts: rig.hosts),
            resolve: { n, a, p in HostEndpoint(name: n, address: a, port: p, user: "root", knownHostsPath: "/dev/null") },
            options: ApplyOptions(parallelism: 4, kubeconfigPath: rig.kubeconfig, readyTimeout: .seconds(2),
                                  readyPollInterval: .milliseconds(10)),
            events: rig.log.sink)
        let report = try await engine.run()
        #expect(report.succeeded, "\(report.failures)")
        #expect(!FileManager.default.fileExists(atPath: store.journalPath))
        let file = try StateStore.decode(Data(contentsOf: URL(fileURLWithPath: store.path)), path: store.path)
        #expect(file.serial == (await run.state).serial)
        for h in plan.spec.hosts {
            #expect(file.hosts[h.name]?.steps.count == StepCatalogue.steps(for: h, in: plan).count, "\(h.name)")
        }
        #expect(file.cluster.initializedOn == "cp-1" && file.cluster.steps["kubeconfig"] != nil)
        #expect(file.addons["cni/flannel"] != nil)
    }
}
