import Foundation

/// A dedicated thread that runs one session's blocking work, one job at a time, so that libssh2 calls
/// never occupy Swift's cooperative thread pool. When idle for `idleInterval`, it calls the idle handler
/// (used for SSH keepalives).
final class SessionThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
    private var idleHandler: (@Sendable () -> Void)?
    private let idleInterval: TimeInterval

    init(name: String, idleInterval: TimeInterval = 15) {
        self.idleInterval = idleInterval
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Queues `job`. Once the thread is stopping, a job runs on a short-lived thread of its own instead (it
    /// finds the connection shut and fails fast), so that no caller waits on a thread that has ended and no
    /// libssh2 call ever runs on the cooperative pool.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        if stopping {
            condition.unlock()
            Thread.detachNewThread(job)
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func setIdleHandler(_ handler: (@Sendable () -> Void)?) {
        condition.lock()
        idleHandler = handler
        condition.unlock()
    }

    /// Lets the thread finish the jobs already submitted, then end.
    func stop() {
        condition.lock()
        stopping = true
        idleHandler = nil
        condition.signal()
        condition.unlock()
    }

    /// Runs `body` on this thread and hands its result back to the calling task.
    func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            submit {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }

    private func loop() {
        while true {
            condition.lock()
            var idle: (@Sendable () -> Void)?
            while jobs.isEmpty && !stopping && idle == nil {
                if !condition.wait(until: Date(timeIntervalSinceNow: idleInterval)), jobs.isEmpty, !stopping {
                    idle = idleHandler
                }
            }
            if let idle {
                condition.unlock()
                idle()
                continue
            }
            if jobs.isEmpty {
                // Only reached when stopping.
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
