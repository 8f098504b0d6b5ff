import BootstrapCore
import BootstrapTestSupport
import Foundation
import Testing

extension EndToEnd {
    /// `apply SAVED-PLAN` runs exactly the actions `plan --out` saved.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct SavedPlanTests {
        @Test func applyingASavedPlanRunsExactlyItsActions() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.80")
                defer { lab.down() }
                let small = try lab.writePlan(lab.plan(workers: 1), file: "small.yaml")
                let first = try lab.bootstrap(["apply", "-f", small, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")

                // A second worker, saved as a plan, then applied from the file without a terminal or
                // --auto-approve: the refresh finds the same plan, so nothing is asked.
                let bigger = try lab.writePlan(lab.plan(workers: 2), file: "bigger.yaml")
                let savedPath = (lab.work as NSString).appendingPathComponent("bigger.plan.json")
                let save = try lab.bootstrap(["plan", "-f", bigger, "--out", savedPath])
                #expect(save.status == 0, "\(save.all)")
                let saved = try SavedPlan.decode(Data(contentsOf: URL(fileURLWithPath: savedPath)))
                #expect(saved.applyPlan.steps(of: "worker-2").count == 7, "\(saved.actions)")
                #expect(saved.applyPlan.steps(of: "worker-1").isEmpty && saved.applyPlan.steps(of: "cp-1").isEmpty)

                let run = try lab.bootstrap(["apply", savedPath, "--json"])
                #expect(run.status == 0, "\(run.all)")
                let events = run.stdout.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                let started = events.filter { $0["event"] as? String == "step-started" }
                    .map { "\($0["host"]!)/\($0["step"]!)" }.sorted()
                let planned = saved.actions.map { a -> String in
                    switch a.id {
                    case .hostStep(let h, _), .removal(let h): return "\(h)/\(a.id.stepLabel)"
                    default: return "cp-1/\(a.id.stepLabel)"
                    }
                }.sorted()
                #expect(started == planned)
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true, "worker-2": true])
            }
        }
    }
}
