import BootstrapCore
import Foundation

/// Persists the state. The real one is the `StateStore` (atomic write, backup, journal, lock).
public protocol StatePersisting: Sendable {
    /// Writes `state` whole (incrementing its serial) and returns what was written. Runs the disk work off
    /// the cooperative pool (see `BlockingQueue`).
    func persist(_ state: ClusterState) async throws -> ClusterState

    /// Records `changes` (already applied to the state whose lineage and serial are given) on disk, and
    /// returns the new serial; nil when they cannot be recorded alone (the state must be written whole).
    func append(_ changes: [StateChange], lineage: String, serial: Int) async throws -> Int?

    /// Writes `state`, whose changes are all recorded already, as one whole file (the journal folded in).
    func fold(_ state: ClusterState) async throws -> ClusterState
}

extension StatePersisting {
    /// A store without a journal writes the state whole every time.
    public func append(_ changes: [StateChange], lineage: String, serial: Int) async throws -> Int? { nil }
    public func fold(_ state: ClusterState) async throws -> ClusterState { try await persist(state) }
}

/// The state during a run: every change goes through here and is written before the next step relies on it.
///
/// Writes are grouped: a change is applied to the state at once, and `update` returns when a write that
/// contains it is on disk. While one write is in progress, the changes that arrive (other hosts finishing
/// their steps) wait for the next write, which takes them all. A finished step is still recorded before
/// anything relies on it, but 50 hosts finishing together cost a few writes instead of 50 in a row.
///
/// What a change touches (a finished step, a host's record, the cluster's record, a release) is written as a
/// small record appended to the store's journal, so that a write costs what changed, not the size of the
/// cluster; any other change (manifests, backups) writes the state whole (the journal folded in). `checkpoint` folds the journal into
/// the state file at the end of a run.
public actor RunState {
    public private(set) var state: ClusterState
    let store: any StatePersisting
    private var writing = false
    /// Callers whose changes wait for the next write.
    private var waiting: [CheckedContinuation<Void, any Error>] = []
    /// What the next write must carry: journal records, or (when true) the whole state.
    private var pendingChanges: [StateChange] = []
    private var pendingWhole = false
    /// The next write folds the journal into the state file (`checkpoint`).
    private var pendingFold = false
    /// Journal records written since the last whole write.
    private var journaled = 0
    /// How many callers wait for the next write (for tests).
    var waitingCount: Int { waiting.count }

    public init(state: ClusterState, store: any StatePersisting) {
        self.state = state
        self.store = store
    }

    /// Applies `change` and returns once a write containing it is done. If that write
    /// fails, it throws; the change stays in the state and goes out with a later write (what it records did
    /// happen).
    public func update(_ change: @Sendable (inout ClusterState) -> Void) async throws {
        let before = state
        change(&state)
        // The hosts, the cluster's record and the releases that changed are journaled (the comparison costs
        // far less than writing thousands of hosts); anything else is written whole.
        if let changes = StateChange.changes(from: before, to: state) {
            pendingChanges += changes
        } else {
            pendingWhole = true
        }
        try await commit()
    }

    /// Applies `change` and writes the state whole (the journal folded in): for changes that must show in the
    /// state file itself at once (destroy's removals, one host at a time).
    public func updateWhole(_ change: @Sendable (inout ClusterState) -> Void) async throws {
        change(&state)
        pendingWhole = true
        try await commit()
    }

    /// Applies `change` to host `name`'s record (which must exist) and writes that record alone.
    public func update(host name: String, _ change: @Sendable (inout HostRecord) -> Void) async throws {
        guard var record = state.hosts[name] else { return }
        state.hosts[name] = nil  // one owner of the record while it changes
        change(&record)
        state.hosts[name] = record
        pendingChanges.append(.host(name: name, record: record))
        try await commit()
    }

    /// Writes what is pending, grouped with whatever arrives meanwhile.
    private func commit() async throws {
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
        var first = true
        repeat {
            do {
                try await writePending()
                for c in batch { c.resume() }
            } catch {
                // What it carried is in the state: the next write takes it all, whole.
                pendingWhole = true
                for c in batch { c.resume(throwing: error) }
                if first { failure = error }  // the first write: this caller's own
            }
            first = false
            batch = waiting
            waiting = []
        } while !batch.isEmpty
        if let failure { throw failure }
    }

    private func writePending() async throws {
        let changes = pendingChanges
        let fold = pendingFold
        var whole = pendingWhole
        pendingChanges = []
        pendingWhole = false
        pendingFold = false
        if !whole, !changes.isEmpty {
            if let serial = try await Self.append(changes, lineage: state.lineage, serial: state.serial, to: store) {
                state.serial = serial
                journaled += 1
            } else {
                whole = true
            }
        }
        if whole {
            state.serial = try await Self.write(state, to: store).serial
            journaled = 0
        } else if fold, journaled > 0 {
            state.serial = try await Self.fold(state, to: store).serial
            journaled = 0
        }
    }

    /// Off the actor, so that changes arriving meanwhile can join the next write.
    private nonisolated static func write(_ state: ClusterState, to store: any StatePersisting) async throws
        -> ClusterState
    {
        try await store.persist(state)
    }

    private nonisolated static func append(_ changes: [StateChange], lineage: String, serial: Int,
                                           to store: any StatePersisting) async throws -> Int? {
        try await store.append(changes, lineage: lineage, serial: serial)
    }

    private nonisolated static func fold(_ state: ClusterState, to store: any StatePersisting) async throws
        -> ClusterState
    {
        try await store.fold(state)
    }

    /// Folds the journal into the state file when this run wrote to it (nothing otherwise: a run that
    /// changed nothing leaves the state as it was). Called at the end of a run, whatever its outcome.
    public func checkpoint() async throws {
        pendingFold = true
        try await commit()
    }

    /// Runs `body` (a whole run), then `checkpoint()`, also when `body` throws: then the body's error is what
    /// is thrown, and a fold that failed is left to the next load.
    public nonisolated func checkpointing<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body()
        } catch {
            try? await checkpoint()
            throw error
        }
        try await checkpoint()
        return result
    }

    /// Applies `change` without writing; it is stored with the next whole write.
    public func updateWithoutWriting(_ change: @Sendable (inout ClusterState) -> Void) {
        change(&state)
    }

    public func recordStep(host: String, step: StepName, inputHash: String, at date: Date = Date()) async throws {
        let record = StepRecord(inputHash: inputHash, finishedAt: date)
        guard state.hosts[host] != nil else { return }
        state.hosts[host]?.steps[step.rawValue] = record
        pendingChanges.append(.hostStep(host: host, step: step.rawValue, record: record))
        try await commit()
    }

    public func recordClusterStep(_ step: ClusterStepName, inputHash: String, at date: Date = Date()) async throws {
        let record = StepRecord(inputHash: inputHash, finishedAt: date)
        state.cluster.steps[step.rawValue] = record
        pendingChanges.append(.clusterStep(step: step.rawValue, record: record))
        try await commit()
    }
}
