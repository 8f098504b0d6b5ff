import BootstrapCore
import Foundation

/// What the engine reports while it works. The engine never prints; the CLI turns events into lines.
public enum EngineEvent: Sendable {
    public enum Severity: String, Sendable, Codable { case error, warning, info }

    case phase(String)
    case connected(host: String, elapsed: Duration)
    case facts(host: String, HostFacts)
    case drift(host: String, message: String)
    case preflight(host: String?, severity: Severity, message: String)
    case stepStarted(host: String, step: String)
    /// `ran: false` means the step's check found it already done on the host; it was only recorded.
    case stepFinished(host: String, step: String, elapsed: Duration, ran: Bool)
    case stepFailed(host: String, step: String, elapsed: Duration, error: String)
    case stepSkipped(host: String, step: String, reason: String)
    /// A remote command about to run (secrets redacted).
    case command(host: String, command: String)
    /// A line of remote output (secrets redacted).
    case output(host: String, stream: OutputStream, line: String)
    case message(String)
}

public typealias EventSink = @Sendable (EngineEvent) -> Void

/// A flag set by Ctrl-C: no new step starts once it is set.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public func cancel() { lock.withLock { value = true } }
    public var isCancelled: Bool { lock.withLock { value } }
}
