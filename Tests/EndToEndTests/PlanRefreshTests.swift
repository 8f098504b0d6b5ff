import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// `bootstrap plan --refresh` against the lab: drift made on a host shows up, read-only.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct PlanRefreshTests {
        /// Tools a refresh may run on a host (the facts command); anything else would be a change.
        static let readOnlyTools: Set<String> = ["hostname", "dpkg-query", "rpm", "nproc"]
        /// `ip` only to read the default route and its interface's address (the facts' default.address).
        /// What the facts command may run: read-only tools, `ip` to show routes and addresses, and on a control
        /// plane the certificate expiry.
        static func readOnly(_ tool: String, _ line: String, controlPlane: Bool = false) -> Bool {
            readOnlyTools.contains(tool) || (tool == "ip" && (line.contains(" route show") || line.contains(" addr show")))
                || (controlPlane && tool == "kubeadm" && line.hasSuffix("certs check-expiration"))
        }

        @Test func driftShowsInPlanRefreshAndNothingIsWritten() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.29")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                let apply = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(apply.status == 0, "\(apply.all)")
                let backup = lab.statePath + ".backup"
                let state = try Data(contentsOf: URL(fileURLWithPath: lab.statePath))
                let stateBackup = try Data(contentsOf: URL(fileURLWithPath: backup))

                // Nothing drifted: no changes, exit 0 with --detailed-exitcode.
                let clean = try lab.bootstrap(["plan", "-f", plan, "--refresh", "--detailed-exitcode"])
                #expect(clean.status == 0, "\(clean.all)")
                #expect(clean.stdout.contains("Refreshed 2 hosts over SSH: no drift."), "\(clean.stdout)")
                #expect(clean.stdout.contains("No changes."))

                // Swap back on the worker, containerd removed from the control plane: both show, as changes.
                #expect(try lab.exec(2, "swapon /swap.img && awk 'NR>1' /proc/swaps | wc -l").stdout
                    .trimmingCharacters(in: .whitespacesAndNewlines) == "1")
                #expect(try lab.exec(1, "apt-get remove -y -q containerd >/dev/null 2>&1; dpkg-query -W containerd").status != 0)
                let journals = try (1...2).map { try lab.journal($0).count }
                let drifted = try lab.bootstrap(["plan", "-f", plan, "--refresh", "--detailed-exitcode"])
                #expect(drifted.status == 2, "\(drifted.all)")
                #expect(drifted.stdout.contains("~ worker-1: drift: swap is on again; the host will be prepared again"),
                        "\(drifted.stdout)")
                #expect(drifted.stdout.contains("~ cp-1: drift: containerd is not installed any more"), "\(drifted.stdout)")
                #expect(drifted.stdout.contains("""
                      ~ host worker-1  (\(lab.address(2)), worker)
                          reason: drift: swap is on again; the host will be prepared again
                          steps: prepare
                    """), "\(drifted.stdout)")
                #expect(drifted.stdout.contains("Plan: 0 to add, 2 to change, 0 to destroy."), "\(drifted.stdout)")

                // The JSON document carries the same.
                let json = try lab.bootstrap(["plan", "-f", plan, "--refresh", "--json"])
                #expect(json.status == 0, "\(json.all)")
                let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any] ?? [:]
                let refresh = doc["refresh"] as? [String: Any] ?? [:]
                func entries(_ list: Any?, _ key: String) -> [String] {
                    (list as? [[String: Any]] ?? []).map { "\($0[key] as? String ?? "?") \(($0["steps"] as? [String] ?? []).joined(separator: ","))" }
                }
                #expect(entries(refresh["drift"], "host") == ["cp-1 containerd", "worker-1 prepare"])
                #expect(entries(doc["changes"], "name") == ["cp-1 containerd", "worker-1 prepare"])
                #expect((refresh["refreshed"] as? [String])?.sorted() == ["cp-1", "worker-1"])

                // Read-only: the hosts ran only the facts command's tools, the state and its backup are byte-identical.
                for i in 1...2 {
                    for line in try lab.journal(i).dropFirst(journals[i - 1]) {
                        let tool = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                        #expect(Self.readOnly(tool, line, controlPlane: i == 1), "lab-\(i) ran \(line) during plan --refresh")
                    }
                }
                #expect(try lab.exec(2, "awk 'NR>1' /proc/swaps | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
                #expect(try Data(contentsOf: URL(fileURLWithPath: lab.statePath)) == state, "plan --refresh changed the state file")
                #expect(try Data(contentsOf: URL(fileURLWithPath: backup)) == stateBackup)

                // An unreachable host is reported and the command fails.
                try lab.lab(["fault", "lab-2", "sshd-down"])
                let down = try lab.bootstrap(["plan", "-f", plan, "--refresh"])
                #expect(down.status == 1, "\(down.all)")
                #expect(down.stdout.contains("✗ worker-1: not refreshed:"), "\(down.stdout)")
                #expect(down.stderr.contains("could not refresh 1 host"), "\(down.stderr)")
                try lab.lab(["fault", "lab-2", "sshd-up"])

                // apply repairs what the plan showed; afterwards the refresh finds nothing.
                let repair = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(repair.status == 0, "\(repair.all)")
                let after = try lab.bootstrap(["plan", "-f", plan, "--refresh", "--detailed-exitcode"])
                #expect(after.status == 0, "\(after.all)")
                #expect(after.stdout.contains("no drift"))
            }
        }
    }
}
