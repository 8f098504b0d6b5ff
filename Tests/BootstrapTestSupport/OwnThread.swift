import Foundation

/// Runs a test's blocking work (processes it waits for, polling with sleeps, reading pipes) on a thread of
/// its own instead of one of the cooperative pool's few threads (two on a 2-core machine): the body runs in
/// the calling task, so Swift Testing still attributes its issues to the test, but every job of that task
/// is executed on a serial queue made for it.
///
///     @Test func applyThenDestroy() async throws {
///         try await onOwnThread { ... blocking body ... }
///     }
public func onOwnThread<T: Sendable>(_ body: () throws -> T) async throws -> T {
    try await withTaskExecutorPreference(OwnThreadExecutor()) { try body() }
}

/// A task executor backed by one serial dispatch queue: a thread outside the cooperative pool.
public final class OwnThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "bootstrap.tests.own-thread")

    public init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
