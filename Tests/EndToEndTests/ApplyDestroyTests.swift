import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// The built `bootstrap` binary against the lab: real sshd hosts, simulated node toolchain.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct ApplyDestroyTests {
        static func isReadOnly(_ cmd: String) -> Bool {
            cmd.hasPrefix(". /etc/os-release") || cmd.hasPrefix("true") || cmd.contains("get nodes -o json")
                || cmd == "date +%s" || cmd.hasPrefix("echo \"now=$(date +%s)\"")  // the clock and the token check
        }

        @Test func applyNoOpDestroyApply() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.20")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 2))

                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true, "worker-2": true])
                #expect(first.stdout.contains("Plan: 5 to add"))  // the cluster, three hosts, the CNI release
                let kubeconfig = (lab.work as NSString).appendingPathComponent("e2e.kubeconfig")
                let attrs = try FileManager.default.attributesOfItem(atPath: kubeconfig)
                #expect(attrs[.posixPermissions] as? Int == 0o600)
                #expect(try String(contentsOfFile: kubeconfig, encoding: .utf8).contains("server: https://\(lab.address(1)):6443"))
                #expect(try FileManager.default.attributesOfItem(atPath: lab.statePath)[.posixPermissions] as? Int == 0o600)

                // Secrets never reach stdout, stderr or the logs.
                let s = try lab.state()
                let secrets = ((s["cluster"] as? [String: Any])?["secrets"] as? [String: Any]) ?? [:]
                let values = secrets.values.compactMap { ($0 as? [String: Any])?["value"] as? String }
                #expect(values.count == 2)
                let logs = ["cp-1", "worker-1", "worker-2"].map {
                    (try? String(contentsOfFile: (lab.work as NSString).appendingPathComponent(".bootstrap/logs/\($0).log"), encoding: .utf8)) ?? ""
                }.joined()
                #expect(!logs.isEmpty)
                for v in values {
                    #expect(!first.all.contains(v), "a secret reached the output")
                    #expect(!logs.contains(v), "a secret reached the logs")
                }

                // A second apply changes nothing: no mutating command runs and the state is not rewritten.
                let before = ["cp-1", "worker-1", "worker-2"].map { lab.loggedCommands(host: $0).count }
                let serial = try lab.state()["serial"] as? Int
                let second = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(second.status == 0, "\(second.all)")
                #expect(second.stdout.contains("No changes."))
                for (i, host) in ["cp-1", "worker-1", "worker-2"].enumerated() {
                    for cmd in lab.loggedCommands(host: host).dropFirst(before[i]) {
                        #expect(Self.isReadOnly(cmd), "\(host) ran a mutating command on a no-op apply: \(cmd)")
                    }
                }
                #expect(try lab.state()["serial"] as? Int == serial)

                // Destroy empties the state (its backup kept) and resets the hosts.
                let destroy = try lab.bootstrap(["destroy", "-f", plan, "--auto-approve"])
                #expect(destroy.status == 0, "\(destroy.all)")
                let emptied = try lab.state()
                #expect((emptied["hosts"] as? [String: Any])?.isEmpty == true)
                #expect(FileManager.default.fileExists(atPath: lab.statePath + ".backup"))
                #expect(!FileManager.default.fileExists(atPath: kubeconfig))
                for i in 1...3 {
                    #expect(try lab.exec(i, "test -e /etc/kubernetes/kubelet.conf").status != 0)
                    #expect(try lab.exec(i, "test -e /etc/cni/net.d").status != 0)
                }

                // And apply again gives a working cluster.
                let again = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(again.status == 0, "\(again.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true, "worker-2": true])
            }
        }

        @Test func addAndRemoveWorkers() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.21")
                defer { lab.down() }
                let small = try lab.writePlan(lab.plan(workers: 1), file: "small.yaml")
                let big = try lab.writePlan(lab.plan(workers: 2), file: "plan.yaml")
                #expect(try lab.bootstrap(["apply", "-f", small, "--auto-approve", "--state", lab.statePath]).status == 0)

                // Adding a worker joins just it; the others only answer the fact refresh.
                let before = ["cp-1", "worker-1"].map { lab.loggedCommands(host: $0).count }
                let add = try lab.bootstrap(["apply", "-f", big, "--auto-approve"])
                #expect(add.status == 0, "\(add.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true, "worker-2": true])
                for cmd in lab.loggedCommands(host: "worker-1").dropFirst(before[1]) {
                    #expect(Self.isReadOnly(cmd), "worker-1 was touched: \(cmd)")
                }
                let cpNew = lab.loggedCommands(host: "cp-1").dropFirst(before[0]).filter { !Self.isReadOnly($0) }
                #expect(cpNew.allSatisfy { $0.contains("worker-2") || $0.contains("kubeadm token create") }, "\(cpNew)")

                // Removing it drains it, deletes the node and resets the host.
                let remove = try lab.bootstrap(["apply", "-f", small, "--auto-approve", "--state", lab.statePath])
                #expect(remove.status == 0, "\(remove.all)")
                #expect(remove.stdout.contains("worker-2"))
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                #expect(try lab.exec(3, "test -e /etc/kubernetes/kubelet.conf").status != 0)
                #expect((try lab.state()["hosts"] as? [String: Any])?["worker-2"] == nil)
            }
        }

        @Test func threeControlPlanes() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 4, net: "127.0.22")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(controlPlanes: 3, workers: 1))
                let r = try lab.bootstrap(["apply", "-f", plan, "--auto-approve", "--json"])
                #expect(r.status == 0, "\(r.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "cp-2": true, "cp-3": true, "worker-1": true])
                // Control planes joined one at a time: each join started after the previous one finished.
                let events = r.stdout.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                let cpJoins = events.filter { ($0["step"] as? String) == "join-control-plane" }
                    .map { "\($0["event"]!) \($0["host"]!)" }
                #expect(cpJoins == ["step-started cp-2", "step-finished cp-2", "step-started cp-3", "step-finished cp-3"])
            }
        }

        @Test func preflightRefusalLeavesHostsUntouched() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.23", extra: ["--cpus", "1"])
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                let r = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(r.status == 1)
                #expect(r.all.contains("control plane needs at least 2 CPUs, has 1"))
                #expect(r.all.contains("nothing was changed"))
                for i in 1...2 {
                    #expect(try lab.exec(i, "awk 'NR>1' /proc/swaps | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "0",
                            "swap was turned off on lab-\(i)")
                    #expect(try lab.exec(i, "dpkg-query -W containerd").status != 0, "containerd was installed on lab-\(i)")
                }
            }
        }

        @Test func failingHostDoesNotStopOthersAndRerunCompletes() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.24")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 2))
                // worker-2's sshd dies while it joins (the join hangs until then).
                try lab.lab(["fault", "lab-3", "hang", "kubeadm", "join"])
                let out = Pipe()
                let p = try lab.startBootstrap(["apply", "-f", plan, "--auto-approve", "--json"], output: out)
                lab.waitForCommand(host: "worker-2", timeout: 60) { $0.contains("kubeadm join") }
                Thread.sleep(forTimeInterval: 0.5)
                try lab.lab(["fault", "lab-3", "sshd-down"])
                let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                #expect(p.terminationStatus == 1, "\(text)")
                let hosts = try lab.state()["hosts"] as? [String: [String: Any]] ?? [:]
                #expect((hosts["worker-1"]?["steps"] as? [String: Any])?["join-worker"] != nil, "worker-1 did not finish")
                #expect((hosts["worker-2"]?["steps"] as? [String: Any])?["join-worker"] == nil)

                // The hung join outlived its connection (as a real one would); it ends before the host comes back.
                try lab.lab(["fault", "lab-3", "clear"])
                _ = try lab.exec(3, "pkill -f 'labnode kubeadm join'")
                try lab.lab(["fault", "lab-3", "sshd-up"])
                let rerun = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(rerun.status == 0, "\(rerun.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true, "worker-2": true])
            }
        }

        @Test func killNineAtSeveralStepsConvergesWithOneInitAndOneJoinPerHost() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.25")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 2))
                for (host, step) in [("cp-1", "kubernetes-repo"), ("cp-1", "init"), ("worker-1", "join-worker"), ("worker-2", "node-config")] {
                    let out = Pipe()
                    let p = try lab.startBootstrap(["apply", "-f", plan, "--auto-approve", "--json"], output: out)
                    var buffer = Data()
                    var killed = false
                    while p.isRunning {
                        let chunk = out.fileHandleForReading.availableData
                        if chunk.isEmpty { break }
                        buffer.append(chunk)
                        if String(decoding: buffer, as: UTF8.self).contains("\"host\":\"\(host)\",\"step\":\"\(step)\"") {
                            kill(p.processIdentifier, SIGKILL)
                            killed = true
                            break
                        }
                    }
                    p.waitUntilExit()
                    #expect(killed || p.terminationStatus == 0, "run for \(host)/\(step) neither reached the step nor finished")
                }
                let final = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(final.status == 0, "\(final.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true, "worker-2": true])
                // Counted on the hosts' side: the lab journals every tool call with its exit status.
                // Exactly one run of each, and it succeeded (a killed run's command finished on its own).
                let inits = try lab.journal(1).filter { $0.contains(" kubeadm init --config") }
                #expect(inits == ["0 kubeadm init --config /var/lib/bootstrap/kubeadm-init.yaml --upload-certs"], "\(inits)")
                for i in 2...3 {
                    let joins = try lab.journal(i).filter { $0.contains(" kubeadm join") }
                    #expect(joins == ["0 kubeadm join --config /var/lib/bootstrap/kubeadm-join.yaml"], "lab-\(i): \(joins)")
                }
            }
        }

        @Test func concurrentApplyIsRefusedByTheLock() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.26")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                try lab.lab(["fault", "lab-2", "hang", "apt-get", "install"])
                let p = try lab.startBootstrap(["apply", "-f", plan, "--auto-approve"])
                defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
                lab.waitForCommand(host: "worker-1", timeout: 30) { $0.contains("apt-get install") }
                let second = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(second.status == 1)
                // The holder is named by its whole command line.
                #expect(second.stderr.contains("is locked by `bootstrap apply -f \(plan) --auto-approve` (pid \(p.processIdentifier)"),
                        "\(second.stderr)")
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
    }
}
