import Foundation

/// Why the state could not be read, written or locked. Every case says what to do next.
public enum StateError: Error, Sendable, Equatable, CustomStringConvertible {
    case newerFormat(path: String, found: Int, supported: Int)
    case corrupt(path: String, detail: String)
    case wrongCluster(path: String, found: String, expected: String)
    case lineageMismatch(path: String, found: String, expected: String)
    case locked(path: String, holder: LockHolder?)
    case notLocked(path: String)
    case notLoaded(path: String)
    case io(path: String, operation: String, errno: Int32)
    /// The file on disk is not the one this run last read or wrote: another writer replaced it.
    case replacedByAnotherWriter(path: String, lastSerial: Int, foundSerial: Int?)
    /// `force-unlock --force` of a lock whose holder is still running on this machine.
    case holderAlive(path: String, holder: LockHolder)
    /// The path names a directory (or another non-file).
    case notAFile(path: String, what: String)

    static func text(errno e: Int32) -> String { FileWriteError.text(errno: e) }

    public var description: String {
        switch self {
        case .newerFormat(let p, let f, let s):
            return "state file \(p) has format version \(f); this bootstrap reads up to \(s). Use a newer bootstrap. The file was not changed."
        case .corrupt(let p, let d):
            return "state file \(p) is not valid bootstrap state (\(d)). It was not changed; the previous copy, if any, is \(p).backup."
        case .wrongCluster(let p, let f, let e):
            return "state file \(p) belongs to cluster \"\(f)\", not \"\(e)\". Pass --state with the right file; this one was not changed."
        case .lineageMismatch(let p, let f, let e):
            return "state file \(p) has lineage \(f), but lineage \(e) was expected (another cluster's or a re-created state). It was not changed."
        case .locked(let p, let h):
            let who = h.map { " by \($0)" } ?? ""
            return "state \(p) is locked\(who). Wait for that command to finish, raise --lock-timeout, or run `bootstrap force-unlock` if its holder is gone."
        case .notLocked(let p):
            return "internal error: state \(p) written without holding its lock"
        case .notLoaded(let p):
            return "internal error: state \(p) exists but was written without being loaded first"
        case .io(let p, let op, let e):
            return "\(op) \(p): \(StateError.text(errno: e))"
        case .replacedByAnotherWriter(let p, let last, let found):
            let now = found.map { "serial \($0)" } ?? "no state"
            return "state file \(p) was replaced by another writer since this run wrote serial \(last) (it now holds "
                + "\(now)); this run stopped without overwriting it. Another bootstrap is working on this cluster "
                + "(was its lock removed with force-unlock?): let it finish, then run the command again."
        case .holderAlive(let p, let h):
            return "state \(p) is locked by \(h), which is still running on this machine; not unlocked. "
                + "Stop that command (Ctrl-C) or wait for it; force-unlock is for locks whose holder is gone."
        case .notAFile(let p, let what):
            return "\(p) is \(what), not a state file. Pass --state with the path of a state file "
                + "(NAME.state.json; by default in .bootstrap/ beside the plan)."
        }
    }
}
