import Foundation
import Testing
@testable import BootstrapEngine

actor Counter {
    var current = 0
    var peak = 0
    var order: [String] = []
    func enter(_ id: String) { current += 1; peak = max(peak, current); order.append(id) }
    func leave() { current -= 1 }
}

struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }

@Suite struct SchedulerTests {
    @Test func respectsParallelismAndDependencies() async {
        let c = Counter()
        var jobs: [Job<String>] = []
        for i in 0..<10 {
            jobs.append(Job(id: "w\(i)", dependencies: ["init"]) {
                await c.enter("w\(i)")
                try await Task.sleep(for: .milliseconds(20))
                await c.leave()
            })
        }
        jobs.append(Job(id: "init") { await c.enter("init"); await c.leave() })
        let out = await Scheduler.run(jobs, parallelism: 3)
        #expect(out.values.allSatisfy { $0 == .succeeded })
        #expect(await c.peak == 3)
        #expect(await c.order.first == "init")
    }

    @Test func failureSkipsDependentsButNotOthers() async {
        let jobs = [
            Job(id: "a") { throw Boom() },
            Job(id: "a2", dependencies: ["a"]) {},
            Job(id: "a3", dependencies: ["a2"]) {},
            Job(id: "b") { try await Task.sleep(for: .milliseconds(30)) },
            Job(id: "b2", dependencies: ["b"]) {},
        ]
        let out = await Scheduler.run(jobs, parallelism: 4)
        #expect(out["a"] == .failed("boom"))
        #expect(out["a2"] == .skipped("a did not finish"))
        #expect(out["a3"] == .skipped("a2 did not finish"))
        #expect(out["b"] == .succeeded)
        #expect(out["b2"] == .succeeded)
    }

    @Test func cancellationStopsNewJobsAndLetsRunningOnesFinish() async {
        let flag = CancellationFlag()
        let jobs = [
            Job(id: "running") { flag.cancel(); try await Task.sleep(for: .milliseconds(20)) },
            Job(id: "later", dependencies: ["running"]) {},
        ]
        let out = await Scheduler.run(jobs, parallelism: 2, cancellation: flag)
        #expect(out["running"] == .succeeded)
        #expect(out["later"] == .skipped("cancelled"))
    }

    @Test func missingDependencyCountsAsDone() async {
        let out = await Scheduler.run([Job(id: "x", dependencies: ["recorded-earlier"]) {}], parallelism: 1)
        #expect(out["x"] == .succeeded)
    }

    @Test func interruptionStopsRunningJobsAfterTheGracePeriod() async {
        let flag = CancellationFlag()
        let started = ContinuousClock.now
        let jobs = [
            Job(id: "quick") { try await Task.sleep(for: .milliseconds(50)) },
            Job(id: "hung") { try await Task.sleep(for: .seconds(60)) },
            Job(id: "later", dependencies: ["quick"]) {},
        ]
        Task {
            try await Task.sleep(for: .milliseconds(20))
            flag.cancel()
        }
        let out = await Scheduler.run(jobs, parallelism: 4, cancellation: flag, grace: .milliseconds(300))
        let elapsed = ContinuousClock.now - started
        #expect(out["quick"] == .succeeded)           // finished within the grace period
        if case .failed? = out["hung"] {} else { Issue.record("the hung job was not stopped: \(String(describing: out["hung"]))") }
        #expect(out["later"] == .skipped("cancelled"))
        #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(10), "\(elapsed)")
    }

    @Test func withoutAnInterruptionTheWatcherDoesNotHoldTheRunOpen() async {
        let out = await Scheduler.run([Job(id: "a") {}], parallelism: 1, cancellation: CancellationFlag())
        #expect(out["a"] == .succeeded)
    }
}
