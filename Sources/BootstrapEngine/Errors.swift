import BootstrapCore

public enum ErrorText {
    /// `error` for a line about `host`: without the host's name when the error is about that host.
    public static func describe(_ error: any Error, about host: String?) -> String {
        if let e = error as? any HostScopedError, let name = e.hostName, name == host { return e.detail }
        return String(describing: error)
    }
}

/// Failures of the engine, with where and what to do.
public enum EngineError: Error, CustomStringConvertible, Sendable, HostScopedError {
    /// A remote command exited non-zero.
    case commandFailed(host: String, command: String, status: Int32, signal: String?, stderr: String)
    case preflightFailed(count: Int)
    case unreachable(host: String, reason: String)
    case refused(String)
    case timeout(String)
    case invalidOutput(host: String, what: String)
    /// A guarded command did not start: the host's lock of its kind is still held (by an earlier run's command).
    case lockBusy(host: String, message: String)
    /// The run was interrupted while the command ran; it was stopped.
    case cancelled(host: String, command: String)

    public var hostName: String? {
        switch self {
        case .commandFailed(let host, _, _, _, _), .unreachable(let host, _), .invalidOutput(let host, _),
             .lockBusy(let host, _), .cancelled(let host, _): return host
        case .preflightFailed, .refused, .timeout: return nil
        }
    }

    public var description: String { hostName.map { "\($0): \(detail)" } ?? detail }

    public var detail: String {
        switch self {
        case .commandFailed(_, let command, let status, let signal, let stderr):
            let tail = stderr.split(separator: "\n").suffix(6).joined(separator: "\n    ")
            let how = signal.map { "was killed by SIG\($0)" } ?? "exited with \(status)"
            // The whole command: one line, or a script whose later lines are indented under the first.
            let whole = command.split(separator: "\n").joined(separator: "\n    ")
            return "`\(whole)` \(how)" + (tail.isEmpty ? "" : ":\n    \(tail)")
        case .preflightFailed(let n):
            return "preflight found \(n) error\(n == 1 ? "" : "s"); nothing was changed"
        case .unreachable(_, let reason):
            return "unreachable: \(reason)"
        case .refused(let why):
            return why
        case .timeout(let what):
            return what
        case .invalidOutput(_, let what):
            return "could not read \(what)"
        case .lockBusy(_, let message):
            return message
        case .cancelled(_, let command):
            return "`\(command)` was stopped: the run was interrupted"
        }
    }
}
