import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// What apply says while it waits, and `apply --json` as a stream of events.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct ProgressTests {
        /// A node that is slow to be Ready (its containerd is down for ~40 s) makes wait-ready print a
        /// "waiting for … Ready" line about every 10 s, naming that node; every line of `--json` is one JSON object.
        @Test func slowNodeGetsWaitingLinesAndJSONLinesParse() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.76")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")

                // worker-1's container runtime goes down: its kubelet reports the node NotReady.
                #expect(try lab.exec(2, "systemctl stop containerd").status == 0)
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline, try lab.nodeReadiness()["worker-1"] != false { Thread.sleep(forTimeInterval: 0.5) }
                #expect(try lab.nodeReadiness()["worker-1"] == false)

                let outPath = (lab.work as NSString).appendingPathComponent("apply.jsonl")
                _ = FileManager.default.createFile(atPath: outPath, contents: nil)
                let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
                let p = Process()
                p.executableURL = URL(fileURLWithPath: E2E.binary)
                p.arguments = ["apply", "-f", plan, "--auto-approve", "--json"]
                p.currentDirectoryURL = URL(fileURLWithPath: lab.work)
                p.standardOutput = out
                p.standardError = out
                p.standardInput = FileHandle.nullDevice
                try p.run()
                // Bring the runtime back after about 40 s (a few of them before wait-ready starts).
                let started = Date()
                while p.isRunning, Date().timeIntervalSince(started) < 40 { Thread.sleep(forTimeInterval: 0.5) }
                #expect(try lab.exec(2, "systemctl start containerd").status == 0)
                p.waitUntilExit()
                try out.close()
                #expect(p.terminationStatus == 0)

                let text = try String(contentsOfFile: outPath, encoding: .utf8)
                var events: [[String: Any]] = []
                for line in text.split(separator: "\n") {
                    let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    #expect(obj != nil, "not a JSON object: \(line)")
                    if let obj {
                        #expect(obj["event"] is String && obj["time"] is String, "\(line)")
                        events.append(obj)
                    }
                }
                #expect(events.last?["event"] as? String == "summary")
                #expect(events.last?["succeeded"] as? Bool == true)
                let waits = events.filter { $0["event"] as? String == "waiting" && $0["step"] as? String == "wait-ready" }
                // 35–40 s of NotReady in wait-ready: a line at about 10, 20 and 30 s.
                #expect(waits.count >= 3, "\(text)")
                let elapsed = waits.compactMap { ($0["elapsed"] as? String).flatMap { Double($0.dropLast()) } }
                #expect(elapsed.count == waits.count)
                if let firstAt = elapsed.first { #expect(firstAt >= 10 && firstAt < 13, "\(elapsed)") }
                for (a, b) in zip(elapsed, elapsed.dropFirst()) {
                    #expect(b - a >= 9 && b - a <= 13, "lines \(a) s and \(b) s apart: \(elapsed)")
                }
                for w in waits {
                    #expect(w["host"] as? String == "cp-1")
                    #expect(w["awaiting"] as? [String] == ["worker-1"], "\(w)")
                    #expect(w["message"] as? String == "waiting for 1 node to be Ready: worker-1", "\(w)")
                }

                // Without --json, the same wait is plain lines: "cp-1: waiting for 1 node to be Ready: worker-1 (10s)".
                #expect(try lab.exec(2, "systemctl stop containerd").status == 0)
                let again = Date().addingTimeInterval(60)
                while Date() < again, try lab.nodeReadiness()["worker-1"] != false {
                    Thread.sleep(forTimeInterval: 0.5)
                }
                let plain = try lab.bootstrap(["apply", "-f", plan, "--auto-approve", "--ready-timeout", "12"])
                #expect(plain.status == 1)
                // One line after 10 s (the poll in flight may make it 11 or 12), none before.
                let lines = plain.stdout.split(separator: "\n").filter { $0.contains("waiting for") }
                #expect(lines.count == 1, "\(plain.stdout)")
                #expect(lines.allSatisfy { $0.hasPrefix("  cp-1: waiting for 1 node to be Ready: worker-1 (1") }, "\(plain.stdout)")
                #expect(lines.allSatisfy { ["(10s)", "(11s)", "(12s)"].contains(String($0.suffix(5))) }, "\(plain.stdout)")
                #expect(!plain.stdout.contains("\u{1B}["))
            }
        }
    }
}
