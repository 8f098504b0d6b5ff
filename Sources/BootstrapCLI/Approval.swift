import Foundation

/// Asking before changes are made, without blocking the cooperative pool: the answer is read on a thread
/// of its own.
enum Approval {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var asking = false

    /// True while a question waits for its answer (Ctrl-C then quits at once: nothing has changed yet).
    static var isAsking: Bool { lock.withLock { asking } }

    /// Asks for "yes" on a terminal; without one, refuses (exit 2) unless `autoApprove`. Declined: exit 1.
    static func confirm(_ question: String, autoApprove: Bool) async throws {
        if autoApprove { return }
        guard isatty(STDIN_FILENO) == 1 else {
            printError("error: refusing to act without confirmation: stdin is not a terminal. Pass --auto-approve.")
            throw Exit.badInput
        }
        print("\n\(question)\n  Only 'yes' will be accepted: ", terminator: "")
        fflush(nil)
        lock.withLock { asking = true }
        let answer = await readLine()
        lock.withLock { asking = false }
        guard answer?.trimmingCharacters(in: .whitespaces) == "yes" else {
            print("Cancelled; nothing was changed.")
            throw Exit.failure
        }
    }

    private static func readLine() async -> String? {
        await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let thread = Thread { continuation.resume(returning: Swift.readLine()) }
            thread.name = "bootstrap-confirm"
            thread.start()
        }
    }
}
