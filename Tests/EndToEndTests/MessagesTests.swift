import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// What a failed run says: the command that failed, whole; each host named once.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct MessagesTests {
        @Test func failuresNameTheFailedCommandWholeAndTheHostOnce() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.61")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))

                // An unreachable host: named once, with its address.
                try lab.lab(["fault", "lab-2", "sshd-down"])
                let down = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(down.status == 1, "\(down.all)")
                #expect(down.stdout.contains("error: worker-1: unreachable: \(lab.address(2)):22: connection refused"), "\(down.stdout)")
                try lab.lab(["fault", "lab-2", "sshd-up"])

                // A script whose later line fails: that line is named, not the script's first.
                try lab.lab(["fault", "lab-1", "fail-always", "sysctl", "--system", "--code", "3"])
                // The worker's package transaction fails: the whole apt-get command line with its packages, not cut off.
                try lab.lab(["fault", "lab-2", "fail-always", "apt-get", "install", "--code", "100"])
                let failed = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(failed.status == 1, "\(failed.all)")
                let out = failed.stdout
                #expect(out.contains("cp-1: prepare FAILED"), "\(out)")
                #expect(out.contains("`sysctl --system >/dev/null` exited with 3"), "\(out)")
                #expect(!out.contains("`swapoff -a`"), "\(out)")
                #expect(out.contains("- cp-1/prepare: `sysctl --system >/dev/null` exited with 3"), "\(out)")
                #expect(out.contains("`apt-get -o DPkg::Lock::Timeout=300 install -y -q --allow-downgrades --allow-change-held-packages kubelet=1.34.1-1.1 kubeadm=1.34.1-1.1 kubectl=1.34.1-1.1 (and containerd when missing)` exited with 100"), "\(out)")
                #expect(!out.contains("\"$@\""), "\(out)")
                #expect(!out.contains("…"), "\(out)")
                for host in ["cp-1", "worker-1"] {
                    #expect(!out.contains("\(host): \(host):"), "\(host) named twice: \(out)")
                    #expect(!out.contains("FAILED") || !out.contains("host \(host) ("), "\(out)")
                }
                // The marker the scripts use to say which line failed never shows, in the output or the logs.
                let logs = (try? String(contentsOfFile: (lab.work as NSString).appendingPathComponent(".bootstrap/logs/cp-1.log"),
                                        encoding: .utf8)) ?? ""
                #expect(logs.contains("sysctl: injected fault") || logs.contains("injected fault"), "\(logs)")
                #expect(!out.contains("bootstrap-failed-step") && !logs.contains("bootstrap-failed-step"))

                // kubeadm join failing is named as kubeadm join (not the lock directory's mkdir).
                try lab.lab(["fault", "lab-1", "clear"])
                try lab.lab(["fault", "lab-2", "clear"])
                try lab.lab(["fault", "lab-2", "fail-always", "kubeadm", "join"])
                let join = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(join.status == 1, "\(join.all)")
                #expect(join.stdout.contains("worker-1: join-worker FAILED"), "\(join.stdout)")
                #expect(join.stdout.contains("`kubeadm join --config /var/lib/bootstrap/kubeadm-join.yaml` exited with 1"),
                        "\(join.stdout)")
                #expect(!join.stdout.contains("`mkdir -p -m 700 /var/lib/bootstrap`"), "\(join.stdout)")
                try lab.lab(["fault", "lab-2", "clear"])
                let rerun = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(rerun.status == 0, "\(rerun.all)")

                // show --state with a directory: says so.
                let show = try lab.bootstrap(["show", "--state", lab.work])
                #expect(show.status != 0)
                #expect(show.stderr.contains("\(lab.work) is a directory, not a state file"), "\(show.stderr)")
            }
        }
    }
}
