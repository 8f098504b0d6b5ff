import BootstrapCore
import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// `bootstrap restore`: disaster recovery from a `bootstrap backup` archive (issue 14).
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct RestoreTests {
        static let addons = """
              addons:
                metricsServer: { enabled: true }
              manifests: [ apps/my-app.yaml ]

            """

        func helm(_ lab: Lab, _ args: String) throws -> Output {
            try lab.exec(1, "/usr/local/bin/helm --kubeconfig /etc/kubernetes/admin.conf \(args)")
        }

        /// etcd members (name, status) as the first control plane's etcdctl lists them.
        func members(_ lab: Lab) throws -> [String] {
            let out = try lab.exec(1, "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key member list")
            return out.stdout.split(separator: "\n").map { l in
                let f = l.components(separatedBy: ", ")
                return f.count > 2 ? "\(f[2]) \(f[1])" : String(l)
            }.sorted()
        }

        @Test func restoreBringsBackTheSnapshotsObjectsAndReleases() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 3, net: "127.0.130")
                defer { lab.down() }
                let app = packageRoot.appendingPathComponent("Plans/apps/my-app.yaml").path
                try FileManager.default.createDirectory(atPath: (lab.work as NSString).appendingPathComponent("apps"),
                                                        withIntermediateDirectories: true)
                _ = try lab.writePlan(try String(contentsOfFile: app, encoding: .utf8), file: "apps/my-app.yaml")
                let plan = try lab.writePlan(lab.plan(controlPlanes: 2, workers: 1) + Self.addons)
                let apply = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(apply.status == 0, "\(apply.all)")
                guard apply.status == 0 else { return }
                let backup = try lab.bootstrap(["backup", "-f", plan, "--out", "b.bootstrap-backup"])
                #expect(backup.status == 0, "\(backup.all)")
                let archive = (lab.work as NSString).appendingPathComponent("b.bootstrap-backup")
                let data = try Data(contentsOf: URL(fileURLWithPath: archive))
                let serial = try lab.state()["serial"] as? Int

                // Refused before anything is touched: a tampered file, a file cut in half, another cluster's
                // backup (exit 2), no terminal without --auto-approve (exit 2), an unreachable host (exit 1).
                var tampered = data
                tampered[tampered.count / 2] ^= 0x01
                try tampered.write(to: URL(fileURLWithPath: archive + ".tampered"))
                try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: archive + ".half"))
                var (m, entries) = try BackupArchive.decode(data)
                m.lineage = "00000000-0000-0000-0000-000000000000"
                try BackupArchive.encode(m, entries: entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
                    .write(to: URL(fileURLWithPath: archive + ".other"))
                for (suffix, words) in [(".tampered", "SHA-256"), (".half", "truncated"), (".other", "another cluster named e2e")] {
                    let r = try lab.bootstrap(["restore", "-f", plan, "--from", archive + suffix, "--auto-approve"])
                    #expect(r.status == 2, "\(suffix): \(r.all)")
                    #expect(r.stderr.contains("refusing to restore") && r.stderr.contains(words), "\(suffix): \(r.all)")
                }
                let noTTY = try lab.bootstrap(["restore", "-f", plan, "--from", archive])
                #expect(noTTY.status == 2 && noTTY.stderr.contains("--auto-approve"), "\(noTTY.all)")
                try lab.lab(["fault", "lab-3", "sshd-down"])
                let down = try lab.bootstrap(["restore", "-f", plan, "--from", archive, "--auto-approve"])
                #expect(down.status == 1 && down.stderr.contains("not reachable: worker-1"), "\(down.all)")
                try lab.lab(["fault", "lab-3", "sshd-up"])
                #expect(try lab.state()["serial"] as? Int == serial)
                for h in 1...2 {
                    let ls = try lab.exec(h, "ls /etc/kubernetes/manifests")
                    #expect(ls.stdout.contains("etcd.yaml") && ls.stdout.contains("kube-apiserver.yaml"), "\(ls.all)")
                }
                #expect(try lab.kubectl("create namespace still-writable").status == 0)

                // After the backup: the app's namespace and a release deleted, a namespace added.
                #expect(try lab.kubectl("delete namespace my-app --wait=true --timeout=60s").status == 0)
                #expect(try helm(lab, "uninstall metrics-server -n kube-system").status == 0)
                #expect(try lab.kubectl("get namespace my-app").status != 0)

                // A restore that fails half-way (cp-1 restored, cp-2 not re-joined yet) is finished by running it
                // again: the restored data is kept, the member added once.
                try lab.lab(["fault", "lab-1", "fail-once", "etcdctl", "member add"])
                let failed = try lab.bootstrap(["restore", "-f", plan, "--from", archive, "--auto-approve"])
                #expect(failed.status == 1 && failed.stderr.contains("etcdctl member add cp-2 failed"), "\(failed.all)")
                #expect(failed.stderr.contains("run the same restore again"), "\(failed.all)")
                #expect(try lab.exec(2, "ls /etc/kubernetes/manifests").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "")
                let restore = try lab.bootstrap(["restore", "-f", plan, "--from", archive, "--auto-approve"])
                #expect(restore.status == 0, "\(restore.all)")
                #expect(try lab.exec(1, "ls -d /var/lib/etcd.before-restore-*").stdout.split(separator: "\n").count == 1)
                #expect(restore.stdout.contains("cp-2: wipe its etcd data"), "\(restore.all)")
                #expect(!restore.all.contains("PRIVATE KEY"))

                // The snapshot's objects and releases are back, what came after is gone, every node Ready.
                #expect(try lab.kubectl("get namespace my-app").status == 0)
                #expect(try lab.kubectl("get deployment my-app -n my-app").status == 0)
                #expect(try lab.kubectl("get namespace still-writable").status != 0)
                let releases = try helm(lab, "list -A -o json").stdout
                #expect(releases.contains("\"metrics-server\""), "\(releases)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "cp-2": true, "worker-1": true])
                #expect(try members(lab) == ["cp-1 started", "cp-2 started"])
                // cp-2's etcd runs on fresh data in the restored cluster.
                #expect(try lab.exec(2, "cat /var/lib/etcd/member/lab-cluster-id").stdout
                        == (try lab.exec(1, "cat /var/lib/etcd/member/lab-cluster-id").stdout))
                #expect(try lab.kubectl("create namespace writable-again").status == 0)

                // The state records the restore; the plan wants nothing beyond the snapshot.
                let restores = try #require(try lab.state()["restores"] as? [[String: Any]])
                #expect(restores.count == 1 && restores.first?["restoredOn"] as? String == "cp-1")
                #expect(restores.first?["sha256"] as? String == Hashing.sha256(data))
                let after = try lab.bootstrap(["plan", "-f", plan, "--detailed-exitcode"])
                #expect(after.status == 0 && after.stdout.contains("No changes."), "\(after.all)")
                let again = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(again.status == 0, "\(again.all)")
            }
        }
    }
}
