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
    /// A step that waits (for nodes to be Ready, for a Helm release) is still waiting: `message` says for what
    /// (`waiting for 2 nodes to be Ready: worker-3, worker-7`), `awaiting` names what it still waits for, and
    /// `elapsed` is the time since the step started, `pods` (a Helm release, once read) its pods Ready of
    /// the pods its workloads want. Sent every `ApplyOptions.progressInterval`.
    case waiting(host: String, step: String, message: String, awaiting: [String], elapsed: Duration,
                 pods: ReleasePods.Count? = nil)
    /// A remote command about to run (secrets redacted).
    case command(host: String, command: String)
    /// A line of remote output (secrets redacted).
    case output(host: String, stream: BootstrapTransport.OutputStream, line: String)
    case message(String)
}

public typealias EventSink = @Sendable (EngineEvent) -> Void
