import BootstrapTestSupport
import Foundation
import Testing

extension EndToEnd {
    /// Faults on the operator's machine rather than on the hosts: a full disk under the state and the logs, and
    /// files and directories left looser than bootstrap makes them.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct LocalFaultTests {
        @Test func aFullDiskStopsTheRunCleanlyAndARerunConverges() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.31")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                // `.bootstrap` (state, lock, logs) on a 256 KB file system, filled up before the run.
                let dir = (lab.work as NSString).appendingPathComponent(".bootstrap")
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                #expect(try runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", dir]).status == 0)
                defer { _ = try? runProgram("/bin/umount", ["-l", dir]) }
                _ = try runProgram("/bin/sh", ["-c", "mkdir -p \(dir)/logs && dd if=/dev/zero of=\(dir)/filler bs=4k 2>/dev/null; true"])

                let full = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(full.status == 1, "\(full.all)")  // no crash (SIGILL was 132), no success
                #expect(full.stderr.contains("No space left on device"), "\(full.all)")
                #expect(full.stderr.components(separatedBy: "cannot write the log").count - 1 <= 1, "\(full.stderr)")
                // Nothing half-written: no state (there was none before), no temp file left behind.
                let left = try FileManager.default.contentsOfDirectory(atPath: dir)
                #expect(!left.contains("e2e.state.json"), "\(left)")
                #expect(!left.contains { $0.contains(".tmp-") }, "\(left)")

                // Space again: the next run converges.
                try FileManager.default.removeItem(atPath: dir + "/filler")
                let again = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(again.status == 0, "\(again.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
            }
        }

        @Test func everyRunTightensTheStateDirectoryAndItsFiles() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 1, net: "127.0.32")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 0))
                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                let dir = (lab.work as NSString).appendingPathComponent(".bootstrap")
                let log = dir + "/logs/cp-1.log"
                let files = [lab.statePath, lab.statePath + ".backup", log]
                for f in [dir, dir + "/logs"] + files { chmod(f, 0o755) }
                let second = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(second.status == 0, "\(second.all)")
                func mode(_ p: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? Int) ?? -1 }
                #expect(mode(dir) == 0o700 && mode(dir + "/logs") == 0o700)
                for f in files { #expect(mode(f) == 0o600, "\(f): \(String(mode(f), radix: 8))") }
            }
        }
    }
}
