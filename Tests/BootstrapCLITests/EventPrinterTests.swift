import BootstrapCore
import BootstrapEngine
import Foundation
import Testing
@testable import BootstrapCLI

/// What apply's printer writes to a terminal: the bytes a fake terminal receives.
@Suite struct EventPrinterTests {
    /// A terminal that keeps what is written, with a clock and a size the test sets.
    final class FakeTerminal: @unchecked Sendable {
        private let lock = NSLock()
        private var bytes = Data()
        private var time = Date(timeIntervalSince1970: 1_800_000_000)
        var columns = 80
        var rows = 24

        var terminal: EventPrinter.Terminal {
            EventPrinter.Terminal(write: { data in self.lock.withLock { self.bytes.append(data) }; return nil },
                                  size: { self.lock.withLock { (self.columns, self.rows) } },
                                  now: { self.lock.withLock { self.time } })
        }

        /// What was written since the last call.
        func take() -> String {
            lock.withLock {
                defer { bytes = Data() }
                return String(decoding: bytes, as: UTF8.self)
            }
        }

        func advance(_ seconds: TimeInterval) { lock.withLock { time += seconds } }
        func resize(columns: Int, rows: Int) { lock.withLock { self.columns = columns; self.rows = rows } }
    }

    static let up = "\u{1B}["
    static func dim(_ s: String) -> String { "\u{1B}[2m\(s)\u{1B}[0m" }
    static func green(_ s: String) -> String { "\u{1B}[32m\(s)\u{1B}[0m" }

    static func printer(_ t: FakeTerminal, live: Bool, color: Bool = true, json: Bool = false) -> EventPrinter {
        EventPrinter(json: json, color: color, live: live,
                     logDirectory: NSTemporaryDirectory() + "bootstrap-printer-\(UUID().uuidString)",
                     terminal: t.terminal, redrawInterval: nil)
    }

    @Test func liveStatusLinesAreRedrawnInPlaceAndFinishedLinesScrollAbove() async {
        let t = FakeTerminal()
        let p = Self.printer(t, live: true)
        p.handle(.stepStarted(host: "cp-1", step: "containerd"))
        await p.drain()
        // No line scrolls for a start: its status line is drawn.
        #expect(t.take() == Self.dim("  cp-1: containerd ... (0s)") + "\n")

        t.advance(2)
        p.handle(.stepStarted(host: "worker-1", step: "prepare"))
        await p.drain()
        // Up over the one status line, clear, both status lines.
        #expect(t.take() == "\r\u{1B}[1A\u{1B}[J" + Self.dim("  cp-1: containerd ... (2s)") + "\n"
                + Self.dim("  worker-1: prepare ... (0s)") + "\n")

        t.advance(3)
        p.handle(.stepFinished(host: "cp-1", step: "containerd", elapsed: .milliseconds(5000), ran: true))
        await p.drain()
        // The finished line where the status was, then the status of what still runs.
        #expect(t.take() == "\r\u{1B}[2A\u{1B}[J" + "  cp-1: containerd " + Self.green("done") + " (5.0s)\n"
                + Self.dim("  worker-1: prepare ... (3s)") + "\n")

        // The clock alone redraws the elapsed time.
        t.advance(67)
        p.redraw()
        await p.drain()
        #expect(t.take() == "\r\u{1B}[1A\u{1B}[J" + Self.dim("  worker-1: prepare ... (1m10s)") + "\n")

        // Flush takes the status off the screen; nothing is redrawn until the next event.
        await p.flush()
        #expect(t.take() == "\r\u{1B}[1A\u{1B}[J")
        p.redraw()
        await p.drain()
        #expect(t.take() == "")
        p.handle(.stepFinished(host: "worker-1", step: "prepare", elapsed: .seconds(70), ran: false))
        await p.drain()
        #expect(t.take() == "  worker-1: prepare " + Self.green("ok") + " (70.0s)\n")
    }

    @Test func aWaitingStepSaysWhatItWaitsForOnItsStatusLineInsteadOfScrolling() async {
        let t = FakeTerminal()
        let p = Self.printer(t, live: true)
        p.handle(.stepStarted(host: "cp-1", step: "release monitoring/kube-prometheus-stack"))
        await p.drain()
        _ = t.take()
        t.advance(70)
        p.handle(.waiting(host: "cp-1", step: "release monitoring/kube-prometheus-stack",
                          message: "release monitoring/kube-prometheus-stack: 3 of 5 pods ready", awaiting: ["monitoring/kube-prometheus-stack"],
                          elapsed: .seconds(70), pods: .init(ready: 3, total: 5)))
        await p.drain()
        #expect(t.take() == "\r\u{1B}[1A\u{1B}[J"
                + Self.dim("  cp-1: release monitoring/kube-prometheus-stack: 3 of 5 pods ready (1m10s)") + "\n")
    }

    @Test func statusLinesFitTheTerminal() async {
        let t = FakeTerminal()
        t.resize(columns: 30, rows: 4)
        let p = Self.printer(t, live: true, color: false)
        for i in 1...5 { p.handle(.stepStarted(host: "worker-\(i)", step: "kubernetes-packages")) }
        await p.drain()
        let screen = t.take()
        // After the last redraw: 3 lines (4 rows less one), the last says how many more; each under 30 columns.
        let last = screen.components(separatedBy: "\u{1B}[J").last!
        let lines = last.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines == ["  worker-1: kubernetes-… (0s)", "  worker-2: kubernetes-… (0s)", "  ... and 3 more running"],
                "\(lines)")
        #expect(lines.allSatisfy { $0.count <= 29 })
        // The next redraw moves up over exactly those 3 lines.
        p.handle(.stepFinished(host: "worker-1", step: "kubernetes-packages", elapsed: .seconds(1), ran: true))
        await p.drain()
        #expect(t.take().hasPrefix("\r\u{1B}[3A\u{1B}[J  worker-1: kubernetes-packages done (1.0s)\n"))
    }

    @Test func withoutLiveStatusTheLinesArePlainAsInALog() async {
        let t = FakeTerminal()
        let p = Self.printer(t, live: false, color: false)
        p.handle(.stepStarted(host: "cp-1", step: "release cni/flannel"))
        p.handle(.waiting(host: "cp-1", step: "release cni/flannel", message: "release kube-flannel/flannel: 1 of 2 pods ready",
                          awaiting: ["kube-flannel/flannel"], elapsed: .seconds(10), pods: .init(ready: 1, total: 2)))
        p.handle(.stepFinished(host: "cp-1", step: "release cni/flannel", elapsed: .seconds(12), ran: true))
        await p.flush()
        #expect(t.take() == """
              cp-1: release cni/flannel ...
              cp-1: release kube-flannel/flannel: 1 of 2 pods ready (10s)
              cp-1: release cni/flannel done (12.0s)

            """)
    }

    @Test func theWaitingEventCarriesThePodCountsInJSON() async throws {
        let t = FakeTerminal()
        let p = Self.printer(t, live: true, json: true)
        p.handle(.waiting(host: "cp-1", step: "release cni/flannel", message: "release kube-flannel/flannel: 1 of 2 pods ready",
                          awaiting: ["kube-flannel/flannel"], elapsed: .seconds(10), pods: .init(ready: 1, total: 2)))
        p.handle(.waiting(host: "cp-1", step: "wait-ready", message: "waiting for 1 node to be Ready: worker-1",
                          awaiting: ["worker-1"], elapsed: .seconds(10)))
        await p.flush()
        let lines = t.take().split(separator: "\n")
        #expect(lines.count == 2)
        let release = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(release["event"] as? String == "waiting")
        #expect(release["ready"] as? Int == 1 && release["total"] as? Int == 2)
        #expect(release["message"] as? String == "release kube-flannel/flannel: 1 of 2 pods ready")
        let nodes = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(nodes["ready"] == nil && nodes["total"] == nil)
        // JSON is never live: no escape sequence.
        #expect(!lines.contains { $0.contains("\u{1B}") })
    }
}
