import ArgumentParser
import BootstrapCore
import BootstrapEngine
import Foundation

struct ForceUnlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "force-unlock",
        abstract: "Remove a state lock left behind by a command that is gone.",
        discussion: """
            Commands that write the state (apply, destroy) hold FILE.lock (flock) with their pid, host, full \
            command line and start time. The kernel releases the lock when its process exits, so a stale lock \
            file is harmless; this command \
            removes it when nobody holds it. A lock held by a live process is refused unless --force is given: \
            use that only when you are sure the holder (perhaps on another machine sharing the file) is stuck.
            """)

    @Option(name: [.customShort("f"), .customLong("file")],
            help: ArgumentHelp("The cluster plan whose state lock to remove.", valueName: "FILE"), completion: .file())
    var file: String?

    @OptionGroup var stateOption: StateOption

    @Flag(name: .long, help: "Remove the lock even though its holder seems alive.")
    var force = false

    func validate() throws {
        if file == nil && stateOption.state == nil {
            throw ValidationError("Give the plan (-f FILE) or the state file (--state PATH).")
        }
    }

    func run() async throws {
        var path = stateOption.state ?? ""
        if let file {
            let (plan, _) = try await PlanInput.load(file)
            path = PlanInput.statePath(stateOption.state, plan: plan)
        }
        let store = StateStore(path: path)
        do {
            switch try await store.forceUnlock(force: force) {
            case .notLocked:
                print("No lock on \(path).")
            case .removedStale(let h?):
                print("Removed the stale lock on \(path) (left by \(h), which is no longer running).")
            case .removedStale(nil):
                print("Nobody holds the lock on \(path); removed the leftover lock file.")
            case .removedLive(let h):
                print("Removed the lock on \(path)" + (h.map { " held by \($0)" } ?? "")
                      + ". If that command is still running, stop it before running another.")
            }
        } catch let e as StateError {
            printError("error: \(e)")
            if case .locked = e { printError("Pass --force to remove it anyway.") }
            throw Exit.failure
        }
    }
}
