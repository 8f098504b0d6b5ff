import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// What a run leaves on hosts when it is killed, interrupted or outlived by the cluster, and how the next run
    /// copes: guarded remote commands, time limits, the kubeadm removal order, lost tokens and kubeconfigs.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct RecoveryTests {
        /// Polls `condition` every 0.2 s until it holds or `timeout` seconds passed.
        @discardableResult
        static func wait(_ timeout: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if try condition() { return true }
                Thread.sleep(forTimeInterval: 0.2)
            }
            return try condition()
        }

        static func hosts(_ lab: Lab) -> [String: Any] { ((try? lab.state())?["hosts"] as? [String: Any]) ?? [:] }

        /// The Node names the API server on lab host 1 lists.
        static func nodeNames(_ lab: Lab) throws -> Set<String> {
            Set(try lab.kubectl("get nodes -o name").stdout.split(separator: "\n").map { String($0.dropFirst("node/".count)) })
        }

        @Test func destroyResetsANodeBeforeDeletingIt() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.65")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                let applied = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(applied.status == 0, "\(applied.all)")
                // The first control plane's own reset hangs, so the cluster outlives the worker's removal.
                try lab.lab(["fault", "lab-1", "hang", "kubeadm", "reset"])
                let p = try lab.startBootstrap(["destroy", "-f", plan, "--auto-approve"])
                defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
                #expect(Self.wait(60) { Self.hosts(lab)["worker-1"] == nil }, "worker-1 was not destroyed")
                Thread.sleep(forTimeInterval: 2)
                // Deleted before its kubelet stopped, the Node would have been registered again.
                #expect(try Self.nodeNames(lab) == ["cp-1"])
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                try lab.lab(["fault", "lab-1", "clear"])
                _ = try lab.exec(1, "pkill -f '[l]abnode kubeadm reset'")
            }
        }

        @Test func aLostTokenIsReplacedAndADeletedKubeconfigFetchedAgain() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.66")
                defer { lab.down() }
                let small = try lab.writePlan(lab.plan(workers: 1), file: "small.yaml")
                let plan = try lab.writePlan(lab.plan(workers: 2))
                let first = try lab.bootstrap(["apply", "-f", small, "--auto-approve", "--state", lab.statePath])
                #expect(first.status == 0, "\(first.all)")
                let secrets = { ((try? lab.state())?["cluster"] as? [String: Any])?["secrets"] as? [String: [String: Any]] ?? [:] }
                let token = try #require(secrets()["bootstrapToken"]?["value"] as? String)
                // The cluster loses the token the state still records as valid.
                let deleted = try lab.exec(1, "kubeadm token delete \(token.prefix(6))")
                #expect(deleted.status == 0, "\(deleted.all)")

                let add = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(add.status == 0, "\(add.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true, "worker-2": true])
                let fresh = try #require(secrets()["bootstrapToken"]?["value"] as? String)
                #expect(fresh != token)
                #expect(!add.all.contains(fresh) && !add.all.contains(token))

                // A deleted kubeconfig is fetched again (and nothing else runs).
                let kubeconfig = (lab.work as NSString).appendingPathComponent("e2e.kubeconfig")
                try FileManager.default.removeItem(atPath: kubeconfig)
                let again = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(again.status == 0, "\(again.all)")
                #expect(again.all.contains("is missing; it is fetched again"), "\(again.all)")
                #expect(FileManager.default.fileExists(atPath: kubeconfig))
                #expect(try String(contentsOfFile: kubeconfig, encoding: .utf8).contains("server: https://\(lab.address(1)):6443"))
                #expect(try FileManager.default.attributesOfItem(atPath: kubeconfig)[.posixPermissions] as? Int == 0o600)
            }
        }

        @Test func aPackageInstallOutlivesAKilledRunAndTheNextRunWaitsForIt() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                // Realistic delays, scaled so that the package transaction (containerd and the Kubernetes packages)
                // takes a few seconds.
                setenv("LAB_SCALE", "0.2", 1)
                let lab = try Lab(hosts: 2, net: "127.0.67", extra: ["--profile", "realistic"])
                unsetenv("LAB_SCALE")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                let p = try lab.startBootstrap(["apply", "-f", plan, "--auto-approve"])
                // The transaction's script as bootstrap logs it when it starts (its packages are in `set --` lines).
                lab.waitForCommand(host: "worker-1", timeout: 60) { $0.contains("install -y -q --allow-downgrades") }
                // apt-get is now past its index refresh and unpacking: bootstrap dies under it.
                #expect(Self.wait(20) { (try? lab.exec(2, "ls /var/lib/dpkg/updates").stdout.isEmpty == false) ?? false },
                        "apt-get did not start unpacking")
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()

                let rerun = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(rerun.status == 0, "\(rerun.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                // The killed run's apt-get finished on its own (no SIGPIPE, exit 141); no apt-get failed.
                let aptRuns = try lab.journal(2).filter { $0.contains(" apt-get ") || $0.contains(" dpkg ") }
                #expect(aptRuns.contains { $0.hasPrefix("0 apt-get") && $0.contains("install -y -q") && $0.contains(" containerd kubelet=") }, "\(aptRuns)")
                #expect(aptRuns.allSatisfy { $0.hasPrefix("0 ") }, "\(aptRuns)")
            }
        }

        @Test func ctrlCStopsAHungJoinAndALeftoverOneIsNamedWithinTheLimit() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.68")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1) + "  timeouts:\n    join: 30\n")
                try lab.lab(["fault", "lab-2", "hang", "kubeadm", "join"])
                let hungJoin = { (try? lab.exec(2, "pgrep -f '[l]abnode kubeadm join'").status == 0) ?? false }

                // Ctrl-C: the running join gets the grace period, then its remote command is stopped.
                let p = try lab.startBootstrap(["apply", "-f", plan, "--auto-approve"])
                defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
                lab.waitForCommand(host: "worker-1", timeout: 60) { $0.contains("kubeadm join") }
                #expect(Self.wait(10) { hungJoin() })
                let interrupted = Date()
                kill(p.processIdentifier, SIGINT)
                #expect(Self.wait(40) { !p.isRunning }, "bootstrap kept waiting for the hung join after Ctrl-C")
                #expect(p.terminationStatus == 130)
                #expect(Date().timeIntervalSince(interrupted) >= 9)
                #expect(Self.wait(10) { !hungJoin() }, "the interrupted join is still running on the host")

                // kill -9 instead: the join outlives the run (up to its own limit, 300 s in that run's plan) and holds the
                // host's kubeadm lock. The next run waits for it no longer than its join limit, says who holds the lock,
                // and does not reset the host under it.
                let patient = try lab.writePlan(lab.plan(workers: 1) + "  timeouts:\n    join: 300\n", file: "patient.yaml")
                let q = try lab.startBootstrap(["apply", "-f", patient, "--auto-approve"])
                defer { if q.isRunning { kill(q.processIdentifier, SIGKILL); q.waitUntilExit() } }
                lab.waitForCommand(host: "worker-1", timeout: 60) { $0.contains("kubeadm join") }
                #expect(Self.wait(10) { hungJoin() })
                kill(q.processIdentifier, SIGKILL)
                q.waitUntilExit()
                let resetsBefore = try lab.journal(2).filter { $0.contains(" kubeadm reset") }.count
                let started = Date()
                let blocked = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(blocked.status == 1, "\(blocked.all)")
                #expect(Date().timeIntervalSince(started) < 120)
                #expect(blocked.all.contains("/var/lib/bootstrap/kubeadm.lock is still held after 30s by kubeadm join (pid "),
                        "\(blocked.all)")
                #expect(hungJoin())
                #expect(try lab.journal(2).filter { $0.contains(" kubeadm reset") }.count == resetsBefore)

                // Once the hung join is gone, a run converges.
                try lab.lab(["fault", "lab-2", "clear"])
                _ = try lab.exec(2, "pkill -f '[l]abnode kubeadm join'")
                let final = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(final.status == 0, "\(final.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
            }
        }
    }
}
