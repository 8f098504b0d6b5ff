import BootstrapCore

/// Failures of the engine, with where and what to do.
public enum EngineError: Error, CustomStringConvertible, Sendable {
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

    public var description: String {
        switch self {
        case .commandFailed(let host, let command, let status, let signal, let stderr):
            let tail = stderr.split(separator: "\n").suffix(6).joined(separator: "\n    ")
            let how = signal.map { "was killed by SIG\($0)" } ?? "exited with \(status)"
            let first = command.split(separator: "\n").first(where: { !$0.hasPrefix("set -e") }) ?? Substring(command)
            return "\(host): `\(first.prefix(120))` \(how)" + (tail.isEmpty ? "" : ":\n    \(tail)")
        case .preflightFailed(let n):
            return "preflight found \(n) error\(n == 1 ? "" : "s"); nothing was changed"
        case .unreachable(let host, let reason):
            return "\(host): unreachable: \(reason)"
        case .refused(let why):
            return why
        case .timeout(let what):
            return what
        case .invalidOutput(let host, let what):
            return "\(host): could not read \(what)"
        case .lockBusy(let host, let message):
            return "\(host): \(message)"
        case .cancelled(let host, let command):
            return "\(host): `\(command)` was stopped: the run was interrupted"
        }
    }
}
