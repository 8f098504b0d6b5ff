import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// The release binary `scripts/release` builds: the shared libraries it needs, and a cluster with it on a
    /// fresh lab. Runs only when BOOTSTRAP_RELEASE_BIN names it (scripts/release sets it): a release build takes
    /// minutes, so it is not part of the default suite.
    @Suite(.enabled(if: E2E.enabled && E2E.releaseBinary != nil, "set BOOTSTRAP_RELEASE_BIN (scripts/release does)"))
    struct ReleaseBinaryTests {
        /// The only shared libraries the release binary may need: glibc's, and the C++/gcc runtime every
        /// Debian/Ubuntu/Amazon Linux system has.
        static let allowed: Set<String> = ["libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "libstdc++.so.6",
                                           "libgcc_s.so.1", "libdl.so.2", "libpthread.so.0", "librt.so.1",
                                           "libutil.so.1"]

        @Test func releaseBinaryNeedsOnlyGlibcAndBringsUpACluster() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let bin = E2E.releaseBinary!
                // What it asks the dynamic loader for (DT_NEEDED), and what ldd resolves.
                let elf = try runProgram("/usr/bin/readelf", ["-d", bin])
                #expect(elf.status == 0, "\(elf.all)")
                let needed = elf.stdout.split(separator: "\n").compactMap { line -> String? in
                    guard line.contains("(NEEDED)"), let a = line.firstIndex(of: "["), let b = line.lastIndex(of: "]")
                    else { return nil }
                    return String(line[line.index(after: a)..<b])
                }
                #expect(!needed.isEmpty)
                #expect(Set(needed).isSubset(of: Self.allowed), "needs \(needed)")
                let ldd = try runProgram("/usr/bin/ldd", [bin])
                #expect(ldd.status == 0 && !ldd.stdout.contains("not found"), "\(ldd.all)")
                for lib in ["libssh2", "libcrypto", "libswift", "libFoundation", "libdispatch", "libz"] {
                    #expect(!ldd.stdout.contains(lib), "\(lib) is linked dynamically:\n\(ldd.stdout)")
                }
                // Stripped: no symbol table.
                #expect(!(try runProgram("/usr/bin/readelf", ["-S", bin]).stdout.contains(".symtab")))

                let lab = try Lab(hosts: 2, net: "127.0.75")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1))
                func run(_ args: [String]) throws -> Output { try runProgram(bin, args, cwd: lab.work, env: ["NO_COLOR": "1"]) }
                #expect(try run(["version"]).stdout.hasPrefix("bootstrap "))
                let apply = try run(["apply", "-f", plan, "--auto-approve"])
                #expect(apply.status == 0, "\(apply.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                let again = try run(["apply", "-f", plan, "--auto-approve"])
                #expect(again.status == 0 && again.stdout.contains("No changes."), "\(again.all)")
                let destroy = try run(["destroy", "-f", plan, "--auto-approve"])
                #expect(destroy.status == 0, "\(destroy.all)")
                #expect(try lab.exec(2, "test -e /etc/kubernetes/kubelet.conf").status != 0)
            }
        }
    }
}
