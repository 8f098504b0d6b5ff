import Foundation

/// A serial queue of its own for work that waits on the kernel: file writes and fsync, lock files, terminal
/// and log output, reading a terminal or a big file.
///
/// Swift's cooperative pool has one thread per core (two on the machines this runs on); a thread parked in
/// `fsync` or `read` there stalls every task scheduled behind it. Work handed to a `BlockingQueue` runs on a
/// dispatch thread outside that pool, and the calling task is resumed through a continuation when it is done.
/// Waiting for time to pass is `Task.sleep`, never a sleep here.
public final class BlockingQueue: Sendable {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Runs `body` on the queue and hands its result (or error) back to the calling task.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result(catching: body)) }
        }
    }

    /// Runs `body` on the queue and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }

    /// Queues `body` without waiting for it (in order with everything else on this queue).
    public func enqueue(_ body: @escaping @Sendable () -> Void) {
        queue.async(execute: body)
    }

    /// Returns once everything queued before this call has run.
    public func drain() async {
        await run { () }
    }
}
