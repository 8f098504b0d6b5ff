import BootstrapCore
import Foundation

/// Runs commands on one host's session, reporting each command and its output as events, with every known
/// secret redacted.
public final class HostRunner: Sendable {
    public let name: String
    public let session: any HostSession
    let events: EventSink
    let redactor: Redactor

    init(name: String, session: any HostSession, events: @escaping EventSink, redactor: Redactor) {
        self.name = name
        self.session = session
        self.events = events
        self.redactor = redactor
    }

    /// The same session, whose commands and output lines in the host's log start with `[label]`: to tell
    /// apart the commands of work running at the same time on one host (Helm releases on their sessions).
    public func labelled(_ label: String) -> HostRunner {
        let sink = events
        let tag = "[\(label)] "
        return HostRunner(name: name, session: session, events: { e in
            switch e {
            case .command(let h, let c):
                // Each line of a script of steps, so that each line of the log says whose it is.
                sink(.command(host: h, command: c.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { tag + $0 }.joined(separator: "\n")))
            case .output(let h, let stream, let line): sink(.output(host: h, stream: stream, line: tag + line))
            default: sink(e)
            }
        }, redactor: redactor)
    }

    /// Runs `command`; a non-zero exit is returned, not thrown. A time-out or a cancellation of the run
    /// becomes `EngineError.timeout` / `.cancelled`, naming the command.
    @discardableResult
    public func probe(_ command: ShellCommand, stdin: Data? = nil, timeout: Duration = .seconds(300))
        async throws -> CommandResult
    {
        try await execute(command, stdin: stdin, timeout: timeout).result
    }

    /// Runs `command` and throws unless it succeeds: `EngineError.lockBusy` / `.timeout` for a guarded command
    /// that could not take its lock or ran out of time on the host (see `RemoteGuard`), else
    /// `EngineError.commandFailed`, naming the command that failed: the failed step of a script of steps, a
    /// guarded command's label, else the whole command. A command that `retriesTransientAPIErrors` runs again
    /// after a pause while it fails with a `TransientAPIError` (each repeat noted in the host's log).
    @discardableResult
    public func run(_ command: ShellCommand, stdin: Data? = nil, timeout: Duration = .seconds(900))
        async throws -> CommandResult
    {
        var (result, step) = try await execute(command, stdin: stdin, timeout: timeout)
        var attempt = 1
        while !result.succeeded, command.retriesTransientAPIErrors, attempt < TransientAPIError.attempts,
              let why = TransientAPIError.reason(in: result.stderrText) {
            attempt += 1
            let pause = TransientAPIError.pause(beforeAttempt: attempt)
            events(.output(host: name, stream: .stderr, line: redact(
                "the API server could not serve this for a moment (\(why)): running it again in \(pause)s "
                    + "(attempt \(attempt) of \(TransientAPIError.attempts))", command.secrets + redactor.secrets)))
            try? await Task.sleep(for: .milliseconds(Int(pause * 1000)))
            if Task.isCancelled {
                throw EngineError.cancelled(host: name, command: redact(command.label ?? command.shown,
                                                                        command.secrets + redactor.secrets))
            }
            (result, step) = try await execute(command, stdin: stdin, timeout: timeout)
        }
        guard result.succeeded else {
            let secrets = command.secrets + redactor.secrets
            let marker = { (m: String) in
                result.stderrText.split(separator: "\n").last { $0.hasPrefix(m) }.map { redact(String($0.dropFirst(m.count + 1)), secrets) }
            }
            if result.exitStatus == RemoteGuard.lockBusyStatus, let why = marker(RemoteGuard.lockBusyMarker) {
                throw EngineError.lockBusy(host: name, message: why)
            }
            if result.exitStatus == RemoteGuard.timedOutStatus, let why = marker(RemoteGuard.timedOutMarker) {
                throw EngineError.timeout("\(name): \(why)")
            }
            throw EngineError.commandFailed(
                host: name, command: redact(step ?? command.label ?? command.shown, secrets), status: result.exitStatus,
                signal: result.exitSignal, stderr: redact(result.stderrText + result.stdoutText.suffix(2000), secrets))
        }
        return result
    }

    /// Runs `command`, reporting it and its output; a script's report of its failed step is taken out of the
    /// output and returned as the step's name.
    private func execute(_ command: ShellCommand, stdin: Data?, timeout: Duration) async throws
        -> (result: CommandResult, failedStep: String?)
    {
        let secrets = command.secrets + redactor.secrets
        events(.command(host: name, command: redact(command.shown, secrets)))
        let host = name
        let sink = events
        var result: CommandResult
        do {
            result = try await session.run(command, stdin: stdin, timeout: timeout) { stream, line in
                // A guarded command's output (both streams) comes back on stdout, its step report with it.
                guard let line = ShellCommand.withoutStepReport(line) else { return }
                sink(.output(host: host, stream: stream, line: redact(line, secrets)))
            }
        } catch let e as ClassifiedTransportError where e.transportFailure != .other {
            // A time-out or a cancellation of the run, named by what the command does.
            let what = redact(command.label ?? command.shown, secrets)
            if e.transportFailure == .cancelled { throw EngineError.cancelled(host: name, command: what) }
            throw EngineError.timeout("\(name): `\(what)` did not finish within \(timeout.components.seconds)s and was stopped")
        }
        guard !command.stepNames.isEmpty else { return (result, nil) }
        let (step, stderr) = command.failedStep(in: result.stderrText)
        result.stderr = Data(stderr.utf8)
        if step != nil { return (result, step) }
        let (guardedStep, stdout) = command.failedStep(in: result.stdoutText)
        result.stdout = Data(stdout.utf8)
        return (result, guardedStep)
    }

    /// Uploads a file (0600 unless told otherwise).
    public func upload(_ text: String, to path: String, mode: Int = 0o600) async throws {
        events(.command(host: name, command: "upload \(path) (\(text.utf8.count) bytes, mode \(String(mode, radix: 8)))"))
        try await session.upload(Data(text.utf8), to: path, mode: mode)
    }

    public func download(_ path: String) async throws -> Data {
        events(.command(host: name, command: "download \(path)"))
        return try await session.download(path)
    }
}

/// The set of secrets known to this run; grows as secrets are made.
public final class Redactor: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Secret] = []

    public init(_ initial: [Secret] = []) { values = initial }
    public func add(_ s: Secret) { lock.withLock { if !values.contains(s) { values.append(s) } } }
    public var secrets: [Secret] { lock.withLock { values } }
}
