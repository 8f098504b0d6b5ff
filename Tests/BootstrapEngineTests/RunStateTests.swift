import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// A store that takes a while to write, like the state file of a big cluster, and keeps what it wrote.
final class SlowStore: StatePersisting, @unchecked Sendable {
    let lock = NSLock()
    private var written: [ClusterState] = []
    private var failing = false
    private var started = 0
    let delay: TimeInterval
    /// When set, the first write waits for it: the test decides what arrives while a write is in progress.
    let gate: AsyncGate?

    init(delay: TimeInterval, gate: AsyncGate? = nil) {
        self.delay = delay
        self.gate = gate
    }

    var writes: [ClusterState] { lock.withLock { written } }
    var writesStarted: Int { lock.withLock { started } }
    func fail(_ yes: Bool) { lock.withLock { failing = yes } }

    func persist(_ state: ClusterState) async throws -> ClusterState {
        let first = lock.withLock { started += 1; return started == 1 }
        if first, let gate { await gate.wait() }
        try await Task.sleep(for: .seconds(delay))
        return try lock.withLock {
            if failing { throw StateError.io(path: "/state.json", operation: "cannot write", errno: ENOSPC) }
            var s = state
            s.serial = (written.last?.serial ?? state.serial) + 1
            written.append(s)
            return s
        }
    }
}

/// A gate tasks wait at, without holding a thread, until the test opens it.
actor AsyncGate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for w in waiters { w.resume() }
        waiters = []
    }
}

@Suite struct RunStateTests {
    static func step(_ i: Int) -> String { "step-\(i)" }

    @Test func changesArrivingDuringAWriteShareTheNextAndEachReturnsOnceWritten() async throws {
        let gate = AsyncGate()
        let store = SlowStore(delay: 0.01, gate: gate)
        let run = RunState(state: ClusterState(name: "lab", toolVersion: "t"), store: store)
        let n = 40
        func record(_ i: Int) async throws -> Bool {
            try await run.update { $0.cluster.steps[Self.step(i)] = StepRecord(inputHash: "h\(i)", finishedAt: Date()) }
            // The moment its update returns, a write holding its change must be done.
            return store.writes.contains { $0.cluster.steps[Self.step(i)] != nil }
        }
        let first = Task { try await record(0) }
        let deadline = Date().addingTimeInterval(30)
        while store.writesStarted == 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(2)) }
        // While the first write is held, the other 39 changes arrive and wait for the next one.
        let rest = Task {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 1..<n { group.addTask { try await record(i) } }
                var all: [Bool] = []
                for try await ok in group { all.append(ok) }
                return all
            }
        }
        while await run.waitingCount < n - 1 && Date() < deadline { try await Task.sleep(for: .milliseconds(2)) }
        #expect(await run.waitingCount == n - 1)
        await gate.open()
        let seen = try await [first.value] + rest.value
        #expect(seen.count == n && seen.allSatisfy { $0 })
        let writes = store.writes
        // Two writes: the first with its own change, the second with the 39 that arrived meanwhile.
        #expect(writes.count == 2, "\(writes.count) writes")
        #expect(writes.first?.cluster.steps.count == 1 && writes.last?.cluster.steps.count == n)
        #expect(writes.map(\.serial) == [1, 2])
        #expect(await run.state.serial == 2)
    }

    @Test func aFailedWriteFailsEveryChangeInItAndNobodyIsLeftWaiting() async throws {
        let store = SlowStore(delay: 0.02)
        store.fail(true)
        let run = RunState(state: ClusterState(name: "lab", toolVersion: "t"), store: store)
        let failures = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<10 {
                group.addTask {
                    do {
                        try await run.update { $0.cluster.steps[Self.step(i)] = StepRecord(inputHash: "h", finishedAt: Date()) }
                        return false
                    } catch {
                        return true
                    }
                }
            }
            var n = 0
            for await failed in group where failed { n += 1 }
            return n
        }
        #expect(failures == 10)
        #expect(store.writes.isEmpty)
        // The changes stay in the state: what they record did happen, and the next write takes them.
        store.fail(false)
        try await run.update { $0.cluster.steps["after"] = StepRecord(inputHash: "h", finishedAt: Date()) }
        #expect(store.writes.count == 1 && store.writes[0].cluster.steps.count == 11)
    }
}
