import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// `apply` shows and asks for what the refresh found, not for the offline diff.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct ApprovalTests {
        /// Tools the facts command runs (read-only); anything else on a host would be a change.

        @Test func driftOnAnUnchangedPlanIsShownAndNeedsApproval() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.60")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                let saved = (lab.work as NSString).appendingPathComponent("saved.plan.json")
                let save = try lab.bootstrap(["plan", "-f", plan, "--out", saved])
                #expect(save.status == 0 && save.stdout.contains("No changes."), "\(save.all)")

                // Swap back on the worker: the plan is unchanged, the offline diff is empty, the refresh is not.
                #expect(try lab.exec(2, "swapon /swap.img").status == 0)
                let state = try Data(contentsOf: URL(fileURLWithPath: lab.statePath))
                let journals = try (1...2).map { try lab.journal($0).count }

                // No terminal, no --auto-approve: the drift and what it makes run are shown, then the run is refused.
                for args in [["apply", "-f", plan], ["apply", saved]] {
                    let refused = try lab.bootstrap(args)
                    #expect(refused.status == 2, "\(args): \(refused.all)")
                    #expect(refused.stderr.contains("refusing to act without confirmation: stdin is not a terminal. Pass --auto-approve."),
                            "\(refused.stderr)")
                    #expect(refused.stdout.contains("~ worker-1: drift: swap is on again"), "\(refused.stdout)")
                    #expect(refused.stdout.contains("""
                          ~ host worker-1  (\(lab.address(2)), worker)
                              reason: drift: swap is on again; the host will be prepared again
                              steps: prepare
                        """), "\(refused.stdout)")
                    #expect(refused.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "\(refused.stdout)")
                    // Shown once, after the refresh: not the offline "No changes." first.
                    #expect(!refused.stdout.contains("No changes."), "\(refused.stdout)")
                }
                // Nothing ran but the facts command, the state is byte-identical and swap is still on.
                for i in 1...2 {
                    for line in try lab.journal(i).dropFirst(journals[i - 1]) {
                        let tool = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                        #expect(PlanRefreshTests.readOnly(tool, line, controlPlane: i == 1), "lab-\(i) ran \(line) on a refused apply")
                    }
                }
                #expect(try Data(contentsOf: URL(fileURLWithPath: lab.statePath)) == state, "a refused apply wrote the state")
                #expect(try lab.exec(2, "awk 'NR>1' /proc/swaps | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

                // Approved, the run repairs it; with nothing left to do, no question is needed.
                let approved = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(approved.status == 0, "\(approved.all)")
                #expect(try lab.exec(2, "awk 'NR>1' /proc/swaps | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
                let noop = try lab.bootstrap(["apply", "-f", plan])
                #expect(noop.status == 0, "\(noop.all)")
                #expect(noop.stdout.contains("No changes."), "\(noop.stdout)")
            }
        }
    }
}
