import BootstrapCore
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

        /// A release whose pods cannot all be scheduled (the only worker is cordoned; the control plane keeps
        /// its NoSchedule taint) says every 10 s how many of its pods are Ready, counted on a second session
        /// while Helm waits on the first; on a terminal, that is the release's live status line, redrawn in place.
        @Test func slowReleaseSaysHowManyPodsAreReadyAndIsLiveOnATerminal() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.79")
                defer { lab.down() }
                let base = lab.plan(workers: 1)
                let plan = try lab.writePlan(base)
                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")

                // Monitoring: 3 Deployments and 2 StatefulSets of 1 pod (on worker-1 only), the node exporter's
                // DaemonSet on both nodes (it tolerates every taint): 2 of 7 Ready while worker-1 is cordoned.
                let monitoring = try lab.writePlan(base.replacingOccurrences(of: "  hosts:\n",
                    with: "  addons:\n    monitoring: { enabled: true }\n  hosts:\n"), file: "monitoring.yaml")
                #expect(try lab.kubectl("cordon worker-1").status == 0)
                let outPath = (lab.work as NSString).appendingPathComponent("apply.jsonl")
                _ = FileManager.default.createFile(atPath: outPath, contents: nil)
                let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
                let p = Process()
                p.executableURL = URL(fileURLWithPath: E2E.binary)
                p.arguments = ["apply", "-f", monitoring, "--auto-approve", "--json"]
                p.currentDirectoryURL = URL(fileURLWithPath: lab.work)
                p.standardOutput = out
                p.standardError = out
                p.standardInput = FileHandle.nullDevice
                try p.run()
                // Uncordoned about 25 s after Helm started: lines at about 10 and 20 s while it waits.
                lab.waitForCommand(host: "cp-1", timeout: 120) { $0.contains("upgrade --install kube-prometheus-stack") }
                let started = Date()
                while p.isRunning, Date().timeIntervalSince(started) < 25 { Thread.sleep(forTimeInterval: 0.5) }
                #expect(try lab.kubectl("uncordon worker-1").status == 0)
                p.waitUntilExit()
                try out.close()
                #expect(p.terminationStatus == 0)
                let text = try String(contentsOfFile: outPath, encoding: .utf8)
                let events = text.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                #expect(events.last?["succeeded"] as? Bool == true, "\(text)")
                let waits = events.filter {
                    $0["event"] as? String == "waiting" && $0["step"] as? String == "release monitoring/kube-prometheus-stack"
                }
                // About 10 and 20 s into the release (and perhaps one as the pods come up after 26 s).
                #expect(waits.count >= 2, "\(text)")
                let cordoned = waits.filter { $0["ready"] as? Int == 2 && $0["total"] as? Int == 7 }
                #expect(cordoned.count >= 2, "\(waits)")
                for w in cordoned {
                    #expect(w["host"] as? String == "cp-1")
                    #expect(w["message"] as? String == "release monitoring/kube-prometheus-stack: 2 of 7 pods ready", "\(w)")
                    #expect(w["awaiting"] as? [String] == ["monitoring/kube-prometheus-stack"], "\(w)")
                }
                // The count ran on a second session to cp-1, logged with the rest of cp-1's commands.
                #expect(lab.loggedCommands(host: "cp-1").contains { $0.contains("get deployments,statefulsets,daemonsets") })

                // On a terminal (a pty from `script`), in colour: the release's status line, dimmed, redrawn in place
                // (cursor up over it, clear to the end of the screen) with its pod count and how long it has run.
                let both = try lab.writePlan(base.replacingOccurrences(of: "  hosts:\n",
                    with: "  addons:\n    monitoring: { enabled: true }\n    metricsServer: { enabled: true }\n  hosts:\n"),
                    file: "both.yaml")
                #expect(try lab.kubectl("cordon worker-1").status == 0)
                let command = Shell.join(["env", "-u", "NO_COLOR", "TERM=xterm", E2E.binary, "apply", "-f", both, "--auto-approve"])
                let pty = Process()
                pty.executableURL = URL(fileURLWithPath: "/usr/bin/script")
                pty.arguments = ["-qfec", command, "/dev/null"]
                pty.currentDirectoryURL = URL(fileURLWithPath: lab.work)
                let screenPath = (lab.work as NSString).appendingPathComponent("screen.txt")
                _ = FileManager.default.createFile(atPath: screenPath, contents: nil)
                let screenFile = try FileHandle(forWritingTo: URL(fileURLWithPath: screenPath))
                pty.standardOutput = screenFile
                pty.standardError = screenFile
                pty.standardInput = FileHandle.nullDevice
                try pty.run()
                lab.waitForCommand(host: "cp-1", timeout: 120) { $0.contains("upgrade --install metrics-server") }
                let again = Date()
                while pty.isRunning, Date().timeIntervalSince(again) < 14 { Thread.sleep(forTimeInterval: 0.5) }
                #expect(try lab.kubectl("uncordon worker-1").status == 0)
                pty.waitUntilExit()
                try screenFile.close()
                let screen = try String(contentsOfFile: screenPath, encoding: .utf8)
                #expect(pty.terminationStatus == 0, "\(screen)")
                let esc = "\u{1B}["
                #expect(screen.contains("\(esc)2m  cp-1: release kube-system/metrics-server: 0 of 1 pod ready (1"), "\(screen)")
                #expect(screen.contains("\r\(esc)1A\(esc)J"), "\(screen)")
                #expect(screen.contains("  cp-1: release metricsServer/metrics-server \(esc)32mdone\(esc)0m ("), "\(screen)")
                // No start line scrolled for it: its status line said it.
                #expect(!screen.contains("\n  cp-1: release metricsServer/metrics-server ...\r"), "\(screen)")
                #expect(screen.contains("Done in"), "\(screen)")
            }
        }
    }
}
