import BootstrapTestSupport
import Foundation
import Testing
@testable import BootstrapCore

/// Scripts of steps: a failure names the step it happened in, and the report of it is taken out of the output.
@Suite struct ShellStepsTests {
    let command = ShellCommand(steps: [
        "swapoff -a",
        .init("if true; then\n  exit 0\nfi", name: "the check"),
        "sysctl --system >/dev/null",
    ])

    @Test func theScriptRecordsEachStepAndReportsTheFailedOne() {
        #expect(command.script.hasPrefix("set -e\n"))
        #expect(command.script.contains("trap bs_exit EXIT"))
        #expect(command.script.contains("bs_step=2; sysctl --system >/dev/null"))
        #expect(command.stepNames == ["swapoff -a", "the check", "sysctl --system >/dev/null"])
        // Logs show the steps as they were written, without the bookkeeping.
        #expect(command.shown == "set -e\nswapoff -a\nif true; then\n  exit 0\nfi\nsysctl --system >/dev/null")
        #expect(command.description == command.shown)
        #expect(!ShellCommand(steps: ["true"], stopOnError: false).script.contains("set -e"))
    }

    @Test func theFailedStepIsReadAndItsReportRemoved() {
        let stderr = "sysctl: cannot stat /proc/sys/x\n\(ShellCommand.stepMarker)2@@\n"
        let (step, rest) = command.failedStep(in: stderr)
        #expect(step == "sysctl --system >/dev/null")
        #expect(rest == "sysctl: cannot stat /proc/sys/x\n")
        // A partial last line before the report keeps its text.
        let glued = command.failedStep(in: "no newline\(ShellCommand.stepMarker)0@@\n")
        #expect(glued.step == "swapoff -a" && glued.stderr == "no newline")
        #expect(command.failedStep(in: "plain error\n") == (nil, "plain error\n"))
        #expect(ShellCommand.withoutStepReport("\(ShellCommand.stepMarker)1@@") == nil)
        #expect(ShellCommand.withoutStepReport("text\(ShellCommand.stepMarker)1@@") == "text")
        #expect(ShellCommand.withoutStepReport("other") == "other")
    }

    @Test func theScriptReallyReportsTheFailedStepAndKeepsItsExitStatus() async throws {
        let script = ShellCommand(steps: ["echo one", "(exit 3)", "echo never"], cleanup: "echo cleaned").script
        for shell in ["/bin/sh", "/bin/bash"] where FileManager.default.isExecutableFile(atPath: shell) {
            let out = try await Program.runAsync(shell, ["-c", script])
            #expect(out.status == 3, "\(shell)")
            #expect(out.stdout == "one\n", "\(shell): cleanup output goes nowhere")
            #expect(out.stderr == "\(ShellCommand.stepMarker)1@@\n", "\(shell)")
        }
    }
}
