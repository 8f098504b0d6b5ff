import BootstrapCore
import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// Certificate expiry in the facts, renewal within `spec.certificates.renewBefore`, and expired
    /// certificates as an error, with the lab's clock moved forward (issue 13).
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct CertificateTests {
        /// `apiserver`'s residual time in `kubeadm certs check-expiration`.
        static func residual(_ lab: Lab, _ name: String = "apiserver") throws -> String? {
            let out = try lab.exec(1, "kubeadm certs check-expiration").stdout
            return out.split(separator: "\n").first { $0.hasPrefix(name + " ") }?
                .split(separator: " ", omittingEmptySubsequences: true).dropFirst(6).first.map(String.init)
        }

        @Test func renewalAfterTheClockMoves() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.120")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                let apply = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(apply.status == 0, "\(apply.all)")
                // Read once the control plane exists, so that `show` has it at once.
                let shown = try lab.bootstrap(["show", "-f", plan])
                #expect(shown.stdout.contains("certificates expire") && shown.stdout.contains("(in 364 days"), "\(shown.all)")

                // A fresh cluster: a year left, reported, nothing to renew.
                let fresh = try lab.bootstrap(["plan", "-f", plan, "--refresh"])
                #expect(fresh.status == 0, "\(fresh.all)")
                #expect(fresh.stdout.contains("cp-1: certificates expire"), "\(fresh.all)")
                #expect(fresh.stdout.contains("(in 364 days"), "\(fresh.all)")
                #expect(fresh.stdout.contains("No changes."), "\(fresh.all)")
                #expect(!fresh.stdout.contains("worker-1: certificates"), "\(fresh.all)")

                // 340 days on: within the default 30 days.
                _ = try lab.lab(["clock", "advance", "340d"])
                let due = try lab.bootstrap(["plan", "-f", plan, "--refresh"])
                #expect(due.status == 0, "\(due.all)")
                #expect(due.stdout.contains("reason: renew certificates (expire in 24 days)"), "\(due.all)")
                #expect(due.stdout.contains("steps: renew-certificates"), "\(due.all)")
                #expect(due.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "\(due.all)")
                let json = try lab.bootstrap(["plan", "-f", plan, "--refresh", "--json"])
                let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
                let ids = (doc["actions"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                #expect(ids.contains("cp-1/renew-certificates") && ids.contains("cluster/kubeconfig"), "\(ids)")
                let refreshed = (doc["refresh"] as? [String: Any])?["certificates"] as? [String: Any]
                #expect(refreshed?["cp-1"] != nil && refreshed?["worker-1"] == nil, "\(json.stdout)")
                #expect(try Self.residual(lab) == "24d")

                // What the running API server serves (the lab shifts it to the machine's clock for openssl).
                let servedCommand = "echo | openssl s_client -connect \(lab.address(1)):6443 2>/dev/null | openssl x509 -noout -enddate"
                let servedBefore = try lab.exec(1, servedCommand).stdout
                #expect(servedBefore.hasPrefix("notAfter="), "\(servedBefore)")
                let kubeconfig = (lab.work as NSString).appendingPathComponent("e2e.kubeconfig")
                func clientCert(_ text: String) -> String? {
                    text.split(separator: "\n").first { $0.contains("client-certificate-data:") }.map(String.init)
                }
                let localBefore = clientCert(try String(contentsOfFile: kubeconfig, encoding: .utf8))
                #expect(localBefore != nil)

                let renew = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(renew.status == 0, "\(renew.all)")
                #expect(renew.stdout.contains("renew-certificates"), "\(renew.all)")
                #expect(try Self.residual(lab) == "364d")
                #expect(try Self.residual(lab, "admin.conf") == "364d")
                // The API server was restarted: it serves the new certificate; the fetched kubeconfig works.
                let servedAfter = try lab.exec(1, servedCommand).stdout
                #expect(servedAfter.hasPrefix("notAfter=") && servedAfter != servedBefore, "\(servedBefore) \(servedAfter)")
                let localAfter = clientCert(try String(contentsOfFile: kubeconfig, encoding: .utf8))
                #expect(localAfter != localBefore)
                #expect(localAfter == clientCert(try lab.exec(1, "cat /etc/kubernetes/admin.conf").stdout))
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                let show = try lab.bootstrap(["show", "-f", plan])
                #expect(show.stdout.contains("(in 364 days, "), "\(show.all)")
                let state = try lab.state()
                let facts = ((state["hosts"] as? [String: Any])?["cp-1"] as? [String: Any])?["facts"] as? [String: Any]
                #expect((facts?["certificates"] as? [String: Any])?["certificates"] != nil, "\(String(describing: facts))")

                // Renewed once: a re-run renews nothing.
                let before = lab.loggedCommands(host: "cp-1").count
                let again = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again.all)")
                for cmd in lab.loggedCommands(host: "cp-1").dropFirst(before) {
                    #expect(!cmd.contains("certs renew"), "renewed again: \(cmd)")
                }

                // Past the year: expired certificates are an error with the way out, at once.
                _ = try lab.lab(["clock", "advance", "400d"])
                let expired = try lab.bootstrap(["plan", "-f", plan, "--refresh"])
                #expect(expired.status == 1, "\(expired.all)")
                #expect(expired.all.contains("certificates on cp-1 expired on"), "\(expired.all)")
                #expect(expired.all.contains("sudo kubeadm certs renew all"), "\(expired.all)")
                let started = Date()
                let refused = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(refused.status == 1, "\(refused.all)")
                #expect(refused.all.contains("sudo kubeadm certs renew all"), "\(refused.all)")
                #expect(Date().timeIntervalSince(started) < 60)
                #expect(try Self.residual(lab) == "<invalid>")  // refused, not renewed behind the user's back

                // The way out, as the error says: renew by hand, restart the static pods, apply again.
                let addr = lab.address(1)
                let manual = try lab.exec(1, """
                    kubeadm certs renew all >/dev/null && mkdir -p /root/m && mv /etc/kubernetes/manifests/*.yaml /root/m/ && \
                    for i in $(seq 60); do curl -sk https://\(addr):6443/livez >/dev/null || break; sleep 0.5; done && \
                    mv /root/m/*.yaml /etc/kubernetes/manifests/ && \
                    for i in $(seq 60); do curl -sk https://\(addr):6443/livez >/dev/null && break; sleep 0.5; done
                    """)
                #expect(manual.status == 0, "\(manual.all)")
                let stale = clientCert(try String(contentsOfFile: kubeconfig, encoding: .utf8))
                let planned = try lab.bootstrap(["plan", "-f", plan, "--refresh"])
                #expect(planned.status == 0, "\(planned.all)")
                #expect(planned.stdout.contains("was renewed since it was fetched; it is fetched again"), "\(planned.all)")
                let out = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(out.status == 0, "\(out.all)")
                let fetched = clientCert(try String(contentsOfFile: kubeconfig, encoding: .utf8))
                let onHost = clientCert(try lab.exec(1, "cat /etc/kubernetes/admin.conf").stdout)
                #expect(fetched != stale && fetched == onHost)
                let last = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(last.status == 0 && last.stdout.contains("No changes."), "\(last.all)")
            }
        }

        @Test func threeControlPlanesRenewOneAtATime() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.121")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(controlPlanes: 3, workers: 0))
                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                _ = try lab.lab(["clock", "advance", "340d"])
                let r = try lab.bootstrap(["apply", "-f", plan, "--auto-approve", "--json"])
                #expect(r.status == 0, "\(r.all)")
                let events = r.stdout.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                // Each renewal started after the previous one finished, in plan order; then the kubeconfig.
                let renewals = events.filter { ($0["step"] as? String) == "renew-certificates" }
                    .map { "\($0["event"]!) \($0["host"]!)" }
                #expect(renewals == ["step-started cp-1", "step-finished cp-1", "step-started cp-2", "step-finished cp-2",
                                     "step-started cp-3", "step-finished cp-3"], "\(r.all)")
                let order = events.compactMap { e -> String? in
                    guard e["event"] as? String == "step-finished" else { return nil }
                    return e["step"] as? String
                }
                #expect(order.lastIndex(of: "renew-certificates").map { i in order[i...].contains("kubeconfig") } == true,
                        "\(order)")
                for i in 1...3 {
                    let out = try lab.exec(i, "kubeadm certs check-expiration").stdout
                    #expect(out.contains("364d") && !out.contains(" 24d "), "lab-\(i): \(out)")
                }
                #expect(try lab.nodeReadiness() == ["cp-1": true, "cp-2": true, "cp-3": true])
                let again = try lab.bootstrap(["plan", "-f", plan, "--refresh"])
                #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again.all)")
            }
        }
    }
}
