import BootstrapCore
import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// `bootstrap backup`: an etcd snapshot and the PKI in one checked archive (issue 14).
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct BackupTests {
        @Test func backupOfALabCluster() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.100")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))

                // Never applied: bad input, nothing written.
                let early = try lab.bootstrap(["backup", "-f", plan])
                #expect(early.status == 2, "\(early.all)")
                #expect(early.stderr.contains("never applied"), "\(early.all)")

                let apply = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(apply.status == 0, "\(apply.all)")

                let backup = try lab.bootstrap(["backup", "-f", plan])
                #expect(backup.status == 0, "\(backup.all)")
                let dir = (lab.statePath as NSString).deletingLastPathComponent
                let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".bootstrap-backup") }
                #expect(files.count == 1, "\(files)")
                let name = try #require(files.first)
                #expect(name.range(of: #"^e2e-\d{8}T\d{6}Z\.bootstrap-backup$"#, options: .regularExpression) != nil, "\(name)")
                let path = (dir as NSString).appendingPathComponent(name)
                #expect(backup.stdout.contains(path), "\(backup.all)")
                #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)

                // The archive: manifest, payload hash, snapshot and PKI.
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                let (manifest, entries) = try BackupArchive.decode(data)
                let state = try lab.state()
                #expect(manifest.cluster == "e2e")
                #expect(manifest.lineage == state["lineage"] as? String)
                #expect(manifest.kubernetesVersion == "1.34.1")
                #expect(manifest.etcdVersion == "3.6.4")
                #expect(manifest.members == ["cp-1"])
                #expect(manifest.takenOn == "cp-1")
                #expect(abs(manifest.createdAt.timeIntervalSinceNow) < 600)
                #expect(Set(entries.keys) == Set(["etcd/snapshot.db", "pki/ca.crt", "pki/ca.key", "pki/front-proxy-ca.crt",
                                                  "pki/front-proxy-ca.key", "pki/sa.key", "pki/sa.pub", "pki/etcd/ca.crt",
                                                  "pki/etcd/ca.key"]))
                let caKey = try lab.exec(1, "cat /etc/kubernetes/pki/ca.key").stdout
                #expect(!caKey.isEmpty && entries["pki/ca.key"] == Data(caKey.utf8))
                // The keys never reach the output.
                #expect(!backup.all.contains("PRIVATE KEY"))

                // The snapshot passes the lab's etcdutl.
                let copy = (lab.dir as NSString).appendingPathComponent("snapshot-copy.db")
                try entries["etcd/snapshot.db"]!.write(to: URL(fileURLWithPath: copy))
                let status = try lab.exec(1, "etcdutl snapshot status \(copy) -w json")
                #expect(status.status == 0, "\(status.all)")
                #expect(status.stdout.contains("\"totalKey\""), "\(status.all)")
                // The remote snapshot is gone.
                #expect(try lab.exec(1, "ls /var/lib/bootstrap/backup/").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "")

                // A tampered copy is refused.
                var bad = data
                bad[bad.count - 3] ^= 0xff
                #expect(throws: BackupArchiveError.self) { try BackupArchive.decode(bad) }

                // The state lists it; `show --json` too.
                let records = try #require(state["backups"] as? [[String: Any]])
                #expect(records.count == 1)
                #expect(records.first?["path"] as? String == path)
                #expect(records.first?["size"] as? Int == data.count)
                #expect(records.first?["sha256"] as? String == Hashing.sha256(data))
                let show = try lab.bootstrap(["show", "-f", plan, "--json"])
                #expect(show.status == 0 && show.stdout.contains(name), "\(show.all)")

                // --out, then no reachable control plane.
                let out = (lab.work as NSString).appendingPathComponent("mine.bootstrap-backup")
                // Given relative to the working directory, recorded in the state as an absolute path.
                let second = try lab.bootstrap(["backup", "-f", plan, "--out", "mine.bootstrap-backup"])
                #expect(second.status == 0, "\(second.all)")
                #expect(try BackupArchive.decode(Data(contentsOf: URL(fileURLWithPath: out))).0.cluster == "e2e")
                let listed = try lab.state()["backups"] as? [[String: Any]]
                #expect(listed?.count == 2)
                #expect(listed?.last?["path"] as? String == URL(fileURLWithPath: out).standardizedFileURL.path)
                let again = try lab.bootstrap(["backup", "-f", plan, "--out", out])
                #expect(again.status == 1 && again.stderr.contains("already exists"), "\(again.all)")
                #expect((try lab.state()["backups"] as? [Any])?.count == 2)

                try lab.lab(["fault", "lab-1", "sshd-down"])
                let down = try lab.bootstrap(["backup", "-f", plan, "--out", out + ".2"])
                #expect(down.status == 1, "\(down.all)")
                #expect(down.stderr.contains("no control plane answered"), "\(down.all)")
                #expect(!FileManager.default.fileExists(atPath: out + ".2"))
            }
        }
    }
}
