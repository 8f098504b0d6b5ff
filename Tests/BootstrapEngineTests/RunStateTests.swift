import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// A store that takes a while to write, like the state file of a big cluster, and keeps what it wrote.
final class SlowStore: StatePersisting, @unchecked Sendable {
    let lock = NSLock()
    private var written: [ClusterState] = []
    private var failing = false
    let delay: TimeInterval

    init(delay: TimeInterval) { self.delay = delay }

    var writes: [ClusterState] { lock.withLock { written } }
    func fail(_ yes: Bool) { lock.withLock { failing = yes } }

    func persist(_ state: ClusterState) throws -> ClusterState {
        Thread.sleep(forTimeInterval: delay)
        return try lock.withLock {
            if failing { throw StateError.io(path: "/state.json", operation: "cannot write", errno: ENOSPC) }
            var s = state
            s.serial = (written.last?.serial ?? state.serial) + 1
            written.append(s)
            return s
        }
    }
}

@Suite struct RunStateTests {
    static func step(_ i: Int) -> String { "step-\(i)" }

    @Test func changesArrivingTogetherShareWritesAndEachReturnsOnceWritten() async throws {
        let store = SlowStore(delay: 0.03)
        let run = RunState(state: ClusterState(name: "lab", toolVersion: "t"), store: store)
        let n = 40
        // Each caller checks, the moment its update returns, that a write holding its change is done.
        let seenWritten = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<n {
                group.addTask {
                    try await run.update { $0.cluster.steps[Self.step(i)] = StepRecord(inputHash: "h\(i)", finishedAt: Date()) }
                    return store.writes.contains { $0.cluster.steps[Self.step(i)] != nil }
                }
            }
            var all: [Bool] = []
            for try await ok in group { all.append(ok) }
            return all
        }
        #expect(seenWritten.count == n && seenWritten.allSatisfy { $0 })
        let writes = store.writes
        #expect(writes.last?.cluster.steps.count == n)
        // One write per change would be 40 in a row; grouped, the ones arriving during a write share the next.
        #expect(writes.count < n / 4, "\(writes.count) writes for \(n) changes")
        // Serials go up by one per write, and the run's state carries the last one.
        #expect(writes.map(\.serial) == Array(1...writes.count))
        #expect(await run.state.serial == writes.count)
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
