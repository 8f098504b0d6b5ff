import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The live part of apply's and destroy's output on a terminal: one status line per running step (its host,
/// what it is doing or still waits for, how long it has run), kept at the bottom of the screen and redrawn in
/// place, while finished lines scroll above it. The `EventPrinter` owns it and uses it on its output queue
/// only; off a terminal, with `--no-color` or `NO_COLOR`, there is none and the lines are plain, as in a log.
///
/// How it draws: the status lines are written last, each ending in a newline, so the cursor waits at the start
/// of the line below them. To print, it moves the cursor up over them (`ESC [ N A`), clears to the end of the
/// screen (`ESC [ J`), writes the new finished lines, then the status lines again. A status line is cut to
/// the terminal's width (a wrapped line would make the count of lines to move up over wrong), and there are
/// never more of them than the terminal has rows.
struct LiveStatus {
    struct Row {
        var host: String
        var step: String
        /// What the step still waits for, once it said (`release m/x: 3 of 5 pods ready`).
        var waiting: String?
        var started: Date
    }

    /// Running steps, in the order they started.
    private(set) var rows: [Row] = []
    /// How many lines the status takes on the screen now.
    private(set) var drawn = 0

    mutating func started(host: String, step: String, at time: Date) {
        rows.removeAll { $0.host == host && $0.step == step }
        rows.append(Row(host: host, step: step, started: time))
    }

    mutating func waiting(host: String, step: String, message: String) {
        if let i = rows.firstIndex(where: { $0.host == host && $0.step == step }) { rows[i].waiting = message }
    }

    mutating func ended(host: String, step: String) {
        rows.removeAll { $0.host == host && $0.step == step }
    }

    /// The bytes that print `lines` (finished lines, each without its newline) above the status and draw the
    /// status again as it is at `now`, in a terminal of `size`.
    mutating func redraw(printing lines: [String], now: Date, size: (columns: Int, rows: Int), color: Bool) -> String {
        var out = erase()
        for l in lines { out += l + "\n" }
        let status = render(now: now, size: size, color: color)
        for l in status { out += l + "\n" }
        drawn = status.count
        return out
    }

    /// The bytes that take the status off the screen (the cursor ends where its first line was).
    mutating func erase() -> String {
        defer { drawn = 0 }
        return drawn > 0 ? "\r\u{1B}[\(drawn)A\u{1B}[J" : ""
    }

    /// The status lines: `  cp-1: containerd ... (4s)`, `  cp-1: release m/x: 3 of 5 pods ready (1m10s)`;
    /// at most the terminal's rows less one, the last of them then saying how many more run.
    func render(now: Date, size: (columns: Int, rows: Int), color: Bool) -> [String] {
        let room = max(1, size.rows - 1)
        let shown = rows.count > room ? Array(rows.prefix(room - 1)) : rows
        var lines = shown.map { row -> String in
            let elapsed = EventPrinter.minutesAndSeconds(.seconds(max(0, now.timeIntervalSince(row.started))))
            let what = row.waiting ?? "\(row.step) ..."
            return Self.fit("  \(row.host): \(what)", suffix: " (\(elapsed))", columns: size.columns, color: color)
        }
        if shown.count < rows.count {
            lines.append(Self.fit("  ... and \(rows.count - shown.count) more running", suffix: "", columns: size.columns,
                                  color: color))
        }
        return lines
    }

    /// `text` and `suffix` in at most `columns - 1` characters (the text cut with `…`), dimmed when in colour.
    static func fit(_ text: String, suffix: String, columns: Int, color: Bool) -> String {
        let width = max(10, columns - 1)
        var body = text
        if body.count + suffix.count > width {
            body = String(body.prefix(max(0, width - suffix.count - 1))) + "…"
        }
        return Paint.paint(body + suffix, .dim, color)
    }

    /// The terminal's size on `fd`; 80×24 when it does not say.
    static func terminalSize(_ fd: Int32 = STDOUT_FILENO) -> (columns: Int, rows: Int) {
        var ws = winsize()
        let rc = withUnsafeMutablePointer(to: &ws) { ioctl(fd, UInt(TIOCGWINSZ), $0) }
        guard rc == 0, ws.ws_col > 0, ws.ws_row > 0 else { return (80, 24) }
        return (Int(ws.ws_col), Int(ws.ws_row))
    }
}
