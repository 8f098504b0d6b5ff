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
///
/// The bookkeeping is proportional to the jobs and their dependencies, not to their square: each job counts
/// its dependencies not done yet, a finished job tells only its own dependents, and the jobs ready to start
/// wait in a heap by their place in the list (30,000 steps on 5,000 hosts must not cost a scan of every
/// waiting job each time one finishes).
public enum Scheduler {
    public static func run<ID>(_ jobs: [Job<ID>], parallelism: Int, cancellation: CancellationFlag? = nil,
                           grace: Duration = .seconds(PlanDefaults.interruptGraceSeconds))
        async -> [ID: JobOutcome]
    {
        // The first job of an id counts (a later one with the same id never runs).
        var index: [ID: Int] = [:]
        var list: [Job<ID>] = []
        for job in jobs where index[job.id] == nil {
            index[job.id] = list.count
            list.append(job)
        }
        var outcome: [ID: JobOutcome] = [:]
        // Per job: dependencies in the graph not succeeded yet, and the jobs that depend on it.
        var unmet = [Int](repeating: 0, count: list.count)
        var dependents = [[Int]](repeating: [], count: list.count)
        for (i, job) in list.enumerated() {
            for d in job.dependencies {
                guard let k = index[d] else { continue }  // not in the graph: done (its step was already recorded)
                unmet[i] += 1
                dependents[k].append(i)
            }
        }
        // Started, or its fate known without running it.
        var settled = [Bool](repeating: false, count: list.count)
        var unsettled = list.count
        var ready = MinHeap()
        for i in list.indices where unmet[i] == 0 { ready.push(i) }
        var running = 0
        let limit = max(1, parallelism)

        func state(of id: ID) -> JobOutcome? { index[id] == nil ? .succeeded : outcome[id] }
        func firstUnfinished(_ i: Int) -> ID? {
            list[i].dependencies.first { id in
                switch state(of: id) {
                case .failed?, .skipped?: return true
                default: return false
                }
            }
        }
        func settle(_ i: Int, _ result: JobOutcome) {
            settled[i] = true
            unsettled -= 1
            outcome[list[i].id] = result
        }
        /// A job's result: its dependents become ready, or are skipped (and theirs, and so on).
        func finished(_ i: Int, _ result: JobOutcome) {
            outcome[list[i].id] = result
            if result == .succeeded {
                for d in dependents[i] {
                    unmet[d] -= 1
                    if unmet[d] == 0, !settled[d] { ready.push(d) }
                }
                return
            }
            var stack = Array(dependents[i].reversed())
            while let d = stack.popLast() {
                guard !settled[d], let bad = firstUnfinished(d) else { continue }
                settle(d, .skipped("\(bad) did not finish"))
                stack.append(contentsOf: dependents[d].reversed())
            }
        }

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
                // Cancelled: nothing new starts; what waits is skipped, in the order given.
                if unsettled > 0, cancellation?.isCancelled == true {
                    for i in list.indices where !settled[i] {
                        settle(i, firstUnfinished(i).map { .skipped("\($0) did not finish") } ?? .skipped("cancelled"))
                    }
                }
                // Start what is ready, in the order given.
                while running < limit, let i = ready.pop() {
                    guard !settled[i] else { continue }
                    settled[i] = true
                    unsettled -= 1
                    running += 1
                    let job = list[i]
                    group.addTask {
                        do {
                            try await job.work()
                            return (Optional(job.id), .succeeded)
                        } catch {
                            return (Optional(job.id), .failed(ErrorText.describe(error, about: job.subject)))
                        }
                    }
                }
                if running == 0 {
                    // Nothing runs and nothing could start: whatever waits has an unmet dependency (a cycle).
                    for i in list.indices where !settled[i] { settle(i, .skipped("dependency cycle")) }
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
                finished(index[id]!, result)
            }
        }
        return outcome
    }
}

/// The smallest index first: jobs start in the order they were given.
private struct MinHeap {
    private var items: [Int] = []

    mutating func push(_ x: Int) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[parent] > items[i] else { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> Int? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, items[l] < items[m] { m = l }
                if r < items.count, items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
