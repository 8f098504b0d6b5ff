import BootstrapCore
import Foundation

/// A unit of work in the step graph, named by a typed id (`ActionID` for apply).
public struct Job<ID: Hashable & Sendable & CustomStringConvertible>: Sendable {
    public var id: ID
    public var dependencies: [ID]
    /// The host the job works on, if one: its failure is told without naming that host again.
    public var subject: String?
    public var work: @Sendable () async throws -> Void

    public init(id: ID, dependencies: [ID] = [], subject: String? = nil,
                work: @escaping @Sendable () async throws -> Void) {
        self.id = id
        self.dependencies = dependencies
        self.subject = subject
        self.work = work
    }
}

public enum JobOutcome: Sendable, Equatable {
    case succeeded
    case failed(String)
    /// Not started: a dependency failed or was skipped, or the run was cancelled.
    case skipped(String)
}

/// Runs a dependency graph of jobs, at most `parallelism` at once. A failed job skips its dependents but lets
/// every independent job go on; cancellation stops new jobs from starting, gives running ones `grace` to
/// finish, then cancels their tasks (the transport stops their remote commands).
public enum Scheduler {
    public static func run<ID>(_ jobs: [Job<ID>], parallelism: Int, cancellation: CancellationFlag? = nil,
                           grace: Duration = .seconds(PlanDefaults.interruptGraceSeconds))
        async -> [ID: JobOutcome]
    {
        let byID = Dictionary(jobs.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var outcome: [ID: JobOutcome] = [:]
        var waiting = jobs.map(\.id)
        var running = 0
        let limit = max(1, parallelism)

        // A dependency that is not in the graph counts as done (its step was already recorded).
        func state(of id: ID) -> JobOutcome? { byID[id] == nil ? .succeeded : outcome[id] }

        // The task that waits for the cancellation flag answers with no id.
        await withTaskGroup(of: (ID?, JobOutcome).self) { group in
            if let cancellation {
                group.addTask {
                    await cancellation.wait()
                    if !Task.isCancelled { try? await Task.sleep(for: grace) }
                    return (nil, .succeeded)
                }
            }
            while true {
                // Settle jobs whose fate is known without running them.
                var progressed = true
                while progressed {
                    progressed = false
                    for id in waiting {
                        let deps = byID[id]!.dependencies.map { ($0, state(of: $0)) }
                        if let bad = deps.first(where: { if case .failed = $0.1 { return true }; if case .skipped = $0.1 { return true }; return false }) {
                            outcome[id] = .skipped("\(bad.0) did not finish")
                            waiting.removeAll { $0 == id }
                            progressed = true
                        } else if cancellation?.isCancelled == true {
                            outcome[id] = .skipped("cancelled")
                            waiting.removeAll { $0 == id }
                            progressed = true
                        }
                    }
                }
                // Start what is ready, in the order given.
                for id in waiting where running < limit {
                    let job = byID[id]!
                    guard job.dependencies.allSatisfy({ state(of: $0) == .succeeded }) else { continue }
                    waiting.removeAll { $0 == id }
                    running += 1
                    group.addTask {
                        do {
                            try await job.work()
                            return (Optional(id), .succeeded)
                        } catch {
                            return (Optional(id), .failed(ErrorText.describe(error, about: job.subject)))
                        }
                    }
                }
                if running == 0 {
                    // Nothing runs and nothing could start: whatever waits has an unmet dependency (a cycle).
                    for id in waiting { outcome[id] = .skipped("dependency cycle") }
                    group.cancelAll()  // the watcher
                    return
                }
                guard let (next, result) = await group.next() else { return }
                guard let id = next else {
                    // Interrupted and the grace period is over: stop what still runs.
                    if !Task.isCancelled { group.cancelAll() }
                    continue
                }
                running -= 1
                outcome[id] = result
            }
        }
        return outcome
    }
}
