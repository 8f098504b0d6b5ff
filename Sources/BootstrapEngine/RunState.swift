import BootstrapCore
import Foundation

/// Persists the state. The real one is the `StateStore` (atomic write, backup, lock).
public protocol StatePersisting: Sendable {
    /// Writes `state` (incrementing its serial) and returns what was written. Runs the disk work off the
    /// cooperative pool (see `BlockingQueue`).
    func persist(_ state: ClusterState) async throws -> ClusterState
}

/// The state during a run: every change goes through here and is written before the next step relies on it.
///
/// Writes are grouped: a change is applied to the state at once, and `update` returns when a write that
/// contains it is on disk. While one write is in progress, the changes that arrive (other hosts finishing
/// their steps) wait for the next write, which takes them all. A finished step is still recorded before
/// anything relies on it, but 50 hosts finishing together cost a few writes instead of 50 in a row: the
/// write of a state with thousands of hosts takes a while, and one per step would make the run wait on them.
public actor RunState {
    public private(set) var state: ClusterState
    let store: any StatePersisting
    private var writing = false
    /// Callers whose changes wait for the next write.
    private var waiting: [CheckedContinuation<Void, any Error>] = []
    /// How many callers wait for the next write (for tests).
    var waitingCount: Int { waiting.count }

    public init(state: ClusterState, store: any StatePersisting) {
        self.state = state
        self.store = store
    }

    /// Applies `change` and returns once a write containing it is done. If that write fails, it throws; the
    /// change stays in the state and goes out with a later write (what it records did happen).
    public func update(_ change: @Sendable (inout ClusterState) -> Void) async throws {
        change(&state)
        if writing {
            try await withCheckedThrowingContinuation { waiting.append($0) }
            return
        }
        writing = true
        defer { writing = false }
        // The first write carries this caller's change; every change that arrives during a write waits in
        // `waiting` and goes out with the next one, until none is left.
        var batch: [CheckedContinuation<Void, any Error>] = []
        var failure: (any Error)?
        repeat {
            do {
                state.serial = try await Self.write(state, to: store).serial
                for c in batch { c.resume() }
            } catch {
                for c in batch { c.resume(throwing: error) }
                if batch.isEmpty { failure = error }  // the first write: this caller's own
            }
            batch = waiting
            waiting = []
        } while !batch.isEmpty
        if let failure { throw failure }
    }

    /// Off the actor, so that changes arriving meanwhile can join the next write.
    private nonisolated static func write(_ state: ClusterState, to store: any StatePersisting) async throws
        -> ClusterState
    {
        try await store.persist(state)
    }

    /// Applies `change` without writing; it is stored with the next write.
    public func updateWithoutWriting(_ change: @Sendable (inout ClusterState) -> Void) {
        change(&state)
    }

    public func recordStep(host: String, step: StepName, inputHash: String, at date: Date = Date()) async throws {
        try await update { $0.hosts[host]?.steps[step.rawValue] = StepRecord(inputHash: inputHash, finishedAt: date) }
    }

    public func recordClusterStep(_ step: ClusterStepName, inputHash: String, at date: Date = Date()) async throws {
        try await update { $0.cluster.steps[step.rawValue] = StepRecord(inputHash: inputHash, finishedAt: date) }
    }
}
