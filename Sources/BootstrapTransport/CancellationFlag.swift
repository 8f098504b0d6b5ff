import Foundation

/// The one cancellation type of every layer. Ctrl-C sets the run's flag: no new step starts once it is set
/// (running ones are stopped after a grace period, see `Scheduler`). A transport call sets one of its own when
/// its task is cancelled, and the session thread doing the work polls `isCancelled`.
/// Safe from any thread; `cancel()` is idempotent.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0
    public init() {}

    public func cancel() {
        let woken = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            value = true
            defer { waiters = [:] }
            return Array(waiters.values)
        }
        for w in woken { w.resume() }
    }

    public var isCancelled: Bool { lock.withLock { value } }

    /// Returns once the flag is set, or when the calling task is cancelled.
    public func wait() async {
        let id = lock.withLock { () -> UInt64 in nextWaiter += 1; return nextWaiter }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = lock.withLock { () -> Bool in
                    if value || Task.isCancelled { return true }
                    waiters[id] = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            let c = lock.withLock { waiters.removeValue(forKey: id) }
            c?.resume()
        }
    }
}
