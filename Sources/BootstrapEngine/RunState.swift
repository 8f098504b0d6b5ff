import BootstrapCore
import Foundation

/// Persists the state. The real one is the `StateStore` (atomic write, backup, lock).
public protocol StatePersisting: Sendable {
    /// Writes `state` (incrementing its serial) and returns what was written. Synchronous on purpose: the
    /// run state calls it without suspending, so no other change can slip in between and be lost.
    func persist(_ state: ClusterState) throws -> ClusterState
}

/// The state during a run: every change goes through here and is written before the next step relies on it.
public actor RunState {
    public private(set) var state: ClusterState
    let store: any StatePersisting

    public init(state: ClusterState, store: any StatePersisting) {
        self.state = state
        self.store = store
    }

    /// Applies `change` and writes the state.
    public func update(_ change: @Sendable (inout ClusterState) -> Void) async throws {
        var next = state
        change(&next)
        state = try store.persist(next)
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
