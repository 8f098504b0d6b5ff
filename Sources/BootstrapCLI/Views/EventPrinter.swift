import BootstrapCore
import BootstrapEngine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Turns engine events into lines: live and coloured on a terminal, plain otherwise, JSON lines with --json;
/// and the full remote output into `.bootstrap/logs/HOST.log`. Secrets arrive redacted already.
///
/// Live (a terminal in colour): the running steps are status lines at the bottom of the screen, one each,
/// redrawn in place every second (`LiveStatus`); a step's start and its waiting lines update its status line
/// instead of scrolling, and finished, failed and skipped steps scroll above as plain lines do.
///
/// Events are turned into text on the caller's task and written, in order, on the printer's own
/// `BlockingQueue`: a slow terminal or disk never holds a thread of the cooperative pool. A write that fails
/// (a full disk, a closed pipe) never crashes the run: it is reported once on stderr, `onFailure` is called
/// (apply and destroy stop starting steps then), and the logs are not written again.
final class EventPrinter: @unchecked Sendable {
    /// Where the lines go, and what it is.
    struct Terminal: Sendable {
        /// Writes all of `bytes`; the errno of a failed write, nil once written.
        var write: @Sendable (Data) -> Int32?
        /// The terminal's columns and rows (live status only).
        var size: @Sendable () -> (columns: Int, rows: Int)
        /// The time (live status only: how long each step has run).
        var now: @Sendable () -> Date

        static let standardOutput = Terminal(write: { FileDescriptor.writeAll(STDOUT_FILENO, $0) },
                                             size: { LiveStatus.terminalSize() }, now: { Date() })
    }

    let json: Bool
    let color: Bool
    let logDirectory: String
    private let io = BlockingQueue(label: "bootstrap.output")
    private let started = Date()
    private let onFailure: @Sendable (String) -> Void
    private let terminal: Terminal
    // Only touched on `io`:
    private var logs: [String: Int32] = [:]
    private var logsFailed = false
    private var outputFailed = false
    /// The status lines, when live.
    private var live: LiveStatus?

    /// `live`: status lines per running step, redrawn in place (a terminal in colour, not `json`), every
    /// `redrawInterval` (nil: only as events come).
    init(json: Bool, color: Bool, live: Bool = false, logDirectory: String, terminal: Terminal = .standardOutput,
         redrawInterval: Duration? = .seconds(1), onFailure: @escaping @Sendable (String) -> Void = { _ in }) {
        self.json = json
        self.color = color
        self.logDirectory = logDirectory
        self.terminal = terminal
        self.onFailure = onFailure
        self.live = live && !json ? LiveStatus() : nil
        io.enqueue {
            try? FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
            _ = chmod(logDirectory, 0o700)
        }
        if live && !json, let redrawInterval {
            Task { [weak self] in
                while true {
                    do { try await Task.sleep(for: redrawInterval) } catch { return }
                    guard let self else { return }
                    self.redraw()
                }
            }
        }
    }

    deinit { for fd in logs.values { close(fd) } }

    var sink: EventSink { { [self] e in handle(e) } }

    /// Takes the live status lines off the screen (they come back with the next event: what is printed
    /// next, by this printer or not, starts on a clean line), then returns once every line handed over so far
    /// is written.
    func flush() async {
        io.enqueue { [self] in
            guard var status = live else { return }
            let bytes = status.erase()
            live = status
            write(Data(bytes.utf8))
        }
        await io.drain()
    }

    /// Returns once every line handed over so far is written, the live status lines staying (tests).
    func drain() async { await io.drain() }

    /// Draws the live status lines again (how long each step has run), if any are on the screen.
    func redraw() {
        io.enqueue { [self] in
            guard var status = live, status.drawn > 0 else { return }
            let bytes = status.redraw(printing: [], now: terminal.now(), size: terminal.size(), color: color)
            live = status
            write(Data(bytes.utf8))
        }
    }

    /// True once a log or output write has failed.
    var failed: Bool { get async { await io.run { [self] in logsFailed || outputFailed } } }

    private func paint(_ s: String, _ colour: Paint.Colour) -> String { Paint.paint(s, colour, color) }

    static func seconds(_ d: Duration) -> String {
        let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        return String(format: "%.1fs", s)
    }

    /// `40s`, `1m10s`: how long a wait has lasted, in whole seconds.
    static func minutesAndSeconds(_ d: Duration) -> String {
        let s = max(0, Int(d.components.seconds))
        return s < 60 ? "\(s)s" : "\(s / 60)m\(String(format: "%02d", s % 60))s"
    }

    func note(_ text: String) {
        emit(json: ["event": "note", "message": text], text: paint(text, .yellow))
    }

    /// Writes the JSON object, or the text line(s); live, `change` updates the status lines first (and
    /// `liveText`, when given, is printed instead of `text`: nil prints nothing above them).
    private func emit(json obj: [String: Any], text: String?, live change: (@Sendable (inout LiveStatus, Date) -> Void)? = nil,
                      liveText: String?? = .none) {
        if json {
            var o = obj
            o["time"] = Timestamp.iso8601(Date())
            guard let data = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]) else { return }
            io.enqueue { [self] in write(data + Data("\n".utf8)) }
            return
        }
        io.enqueue { [self] in
            guard var status = live else {
                if let text { write(Data((text + "\n").utf8)) }
                return
            }
            let line = liveText ?? text
            if change == nil && line == nil { return }
            let now = terminal.now()
            change?(&status, now)
            let bytes = status.redraw(printing: line.map { [$0] } ?? [], now: now, size: terminal.size(), color: color)
            live = status
            write(Data(bytes.utf8))
        }
    }

    /// On `io`: writes to the terminal, and says once when that fails.
    private func write(_ bytes: Data) {
        guard !outputFailed, !bytes.isEmpty else { return }
        if let e = terminal.write(bytes) {
            outputFailed = true
            fail("cannot write to standard output: \(String(cString: strerror(e)))")
        }
    }

    private func log(_ host: String, _ line: String) {
        let bytes = Data("\(Timestamp.iso8601(Date())) \(line)\n".utf8)
        io.enqueue { [self] in
            guard !logsFailed else { return }
            let path = (logDirectory as NSString).appendingPathComponent("\(host).log")
            var fd = logs[host] ?? -1
            if fd < 0 {
                fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
                if fd < 0 {
                    logsFailed = true
                    return fail("cannot open the log \(path): \(String(cString: strerror(errno)))")
                }
                var st = stat()
                if fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG {
                    _ = fchmod(fd, 0o600)  // also a log left looser by an earlier version
                }
                logs[host] = fd
            }
            if let e = FileDescriptor.writeAll(fd, bytes) {
                logsFailed = true
                fail("cannot write the log \(path): \(String(cString: strerror(e)))")
            }
        }
    }

    /// On `io`: says once what failed and lets the command stop.
    private func fail(_ what: String) {
        _ = FileDescriptor.writeAll(STDERR_FILENO, Data("error: \(what); stopping: no new steps start, the state keeps every finished one\n".utf8))
        onFailure(what)
    }

    func handle(_ e: EngineEvent) {
        switch e {
        case .phase(let p):
            emit(json: ["event": "phase", "phase": p], text: paint("==> \(p)", .bold))
        case .connected(let h, let d):
            log(h, "connected in \(Self.seconds(d))")
            emit(json: ["event": "connected", "host": h, "elapsed": Self.seconds(d)], text: nil)
        case .facts(let h, let f):
            log(h, "facts: \(f.osID) \(f.osVersion) \(f.architecture), \(f.cpus) CPUs, \(f.memoryMB) MB, swap \(f.swapOn ? "on" : "off"), hostname \(f.hostname)")
            emit(json: ["event": "facts", "host": h, "os": "\(f.osID) \(f.osVersion)", "cpus": f.cpus, "memoryMB": f.memoryMB],
                 text: "    \(h): \(f.osID) \(f.osVersion) \(f.architecture), \(f.cpus) CPUs, \(f.memoryMB) MB")
        case .drift(let h, let m):
            log(h, "drift: \(m)")
            emit(json: ["event": "drift", "host": h, "message": m], text: paint("  ~ \(h): drift: \(m)", .yellow))
        case .preflight(let h, let sev, let m):
            if let h { log(h, "preflight \(sev.rawValue): \(m)") }
            let colour: Paint.Colour = sev == .error ? .red : .yellow
            emit(json: ["event": "preflight", "host": h ?? "", "severity": sev.rawValue, "message": m],
                 text: paint("  \(sev.rawValue): \(h.map { "\($0): " } ?? "")\(m)", colour))
        case .stepStarted(let h, let s):
            log(h, "step \(s): started")
            emit(json: ["event": "step-started", "host": h, "step": s], text: "  \(h): \(s) ...",
                 live: { $0.started(host: h, step: s, at: $1) }, liveText: .some(nil))
        case .stepFinished(let h, let s, let d, let ran):
            log(h, "step \(s): \(ran ? "done" : "already done") in \(Self.seconds(d))")
            emit(json: ["event": "step-finished", "host": h, "step": s, "elapsed": Self.seconds(d), "changed": ran],
                 text: "  \(h): \(s) " + paint(ran ? "done" : "ok", .green) + " (\(Self.seconds(d)))",
                 live: { status, _ in status.ended(host: h, step: s) })
        case .stepFailed(let h, let s, let d, let err):
            log(h, "step \(s): FAILED after \(Self.seconds(d)): \(err)")
            emit(json: ["event": "step-failed", "host": h, "step": s, "elapsed": Self.seconds(d), "error": err],
                 text: paint("  \(h): \(s) FAILED (\(Self.seconds(d))): \(err)", .red),
                 live: { status, _ in status.ended(host: h, step: s) })
        case .stepSkipped(let h, let s, let why):
            log(h, "step \(s): skipped: \(why)")
            emit(json: ["event": "step-skipped", "host": h, "step": s, "reason": why],
                 text: paint("  \(h): \(s) skipped (\(why))", .yellow),
                 live: { status, _ in status.ended(host: h, step: s) })
        case .waiting(let h, let s, let m, let awaiting, let d, let pods):
            log(h, "\(s): \(m) (\(Self.seconds(d)))")
            var obj: [String: Any] = ["event": "waiting", "host": h, "step": s, "message": m, "awaiting": awaiting,
                                      "elapsed": Self.seconds(d)]
            if let pods {
                obj["ready"] = pods.ready
                obj["total"] = pods.total
            }
            emit(json: obj, text: paint("  \(h): \(m) (\(Self.minutesAndSeconds(d)))", .dim),
                 live: { status, _ in status.waiting(host: h, step: s, message: m) }, liveText: .some(nil))
        case .command(let h, let c):
            log(h, "$ \(c)")
        case .output(let h, let stream, let line):
            log(h, "\(stream == .stderr ? "!" : ">") \(line)")
        case .message(let m):
            emit(json: ["event": "message", "message": m], text: m)
        }
    }

    func summary(_ r: RunReport) {
        if json {
            let rows: [[String: Any]] = r.hosts.map {
                ["host": $0.host, "stepsDone": $0.stepsDone, "stepsPlanned": $0.stepsPlanned, "result": $0.result.rawValue,
                 "error": $0.error ?? ""]
            }
            emit(json: ["event": "summary", "hosts": rows, "succeeded": r.succeeded, "cancelled": r.cancelled,
                        "elapsed": Self.seconds(.seconds(Date().timeIntervalSince(started)))], text: nil)
            return
        }
        let width = max(4, r.hosts.map(\.host.count).max() ?? 4)
        var out = "\n" + "HOST".padding(toLength: width, withPad: " ", startingAt: 0) + "  STEPS   RESULT     TIME\n"
        for h in r.hosts {
            let steps = "\(h.stepsDone)/\(h.stepsPlanned)".padding(toLength: 6, withPad: " ", startingAt: 0)
            let result = h.result.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
            let c: Paint.Colour = h.result == .failed ? .red : (h.result == .skipped ? .yellow : .green)
            out += h.host.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(steps)  " + paint(result, c)
                + "  \(Self.seconds(h.elapsed))\n"
        }
        let total = Self.seconds(.milliseconds(Int(Date().timeIntervalSince(started) * 1000)))
        if r.cancelled {
            out += paint("\nInterrupted after \(total); the state records every finished step. Run the command again to continue.", .yellow)
        } else if r.succeeded {
            out += paint("\nDone in \(total).", .green)
        } else {
            out += paint("\nFailed after \(total):", .red) + "\n" + r.failures.map { "  - \($0)" }.joined(separator: "\n")
                + "\nThe state records every finished step; fix the cause and run the command again to continue."
        }
        emit(json: [:], text: out)
    }
}
