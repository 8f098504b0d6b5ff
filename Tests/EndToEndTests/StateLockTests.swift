import BootstrapTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension EndToEnd {
    /// The state lock records the whole command line of the command holding it (apply, destroy), and the
    /// commands it keeps out name that holder. No lab: the plan's one host is a socket that takes TCP
    /// connections and never speaks SSH, so apply and destroy sit in their connect (holding the lock) until
    /// spec.ssh.connectTimeout.
    @Suite struct StateLockTests {
        @Test func theLockNamesTheFullCommandLineOfItsHolder() async throws {
            try await onOwnThread {
                let listener = try SilentListener(address: E2E.net("127.0.96") + ".10")
                defer { listener.close() }
                let work = NSTemporaryDirectory() + "bootstrap-lock-\(UUID().uuidString.prefix(8))/my plans"
                try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: (work as NSString).deletingLastPathComponent) }
                let key = work + "/id_ed25519"
                #expect(try runProgram("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]).status == 0)
                let planPath = work + "/plan.yaml"
                try """
                    apiVersion: bootstrap.k8s.lab/v1alpha1
                    kind: Cluster
                    metadata: { name: locktest }
                    spec:
                      kubernetes: { version: "1.34.1" }
                      ssh: { user: root, keyPath: "\(key)", knownHosts: "\(work)/known_hosts",
                             hostKeyPolicy: accept-new, connectTimeout: 20 }
                      hosts:
                        - { name: cp-1, address: \(listener.address), port: \(listener.port), role: control-plane }
                    """.write(toFile: planPath, atomically: true, encoding: .utf8)
                let lockPath = work + "/.bootstrap/locktest.state.json.lock"
                let quotedPlan = "'\(planPath)'"

                // apply holds the lock: the lock file says so, word for word.
                let apply = try Self.start(["apply", "-f", planPath, "--auto-approve", "--no-color"])
                defer { if apply.isRunning { apply.terminate() } }
                let applyLine = "bootstrap apply -f \(quotedPlan) --auto-approve --no-color"
                #expect(Self.holderCommand(lockPath, while: apply) == applyLine)
                // Another writer is refused and told who holds it.
                let destroy = try runProgram(E2E.binary, ["destroy", "-f", planPath, "--auto-approve"])
                #expect(destroy.status == 1, "\(destroy.all)")
                #expect(destroy.stderr.contains("locked by `\(applyLine)` (pid \(apply.processIdentifier) on "), "\(destroy.stderr)")
                // force-unlock does not take the lock, and refuses to remove a live holder's, naming it.
                let unlock = try runProgram(E2E.binary, ["force-unlock", "-f", planPath])
                #expect(unlock.status == 1, "\(unlock.all)")
                #expect(unlock.stderr.contains("`\(applyLine)`") && unlock.stderr.contains("still running"), "\(unlock.stderr)")
                // plan takes no lock (README: "Why it takes no lock"): it runs beside the apply.
                let plan = try runProgram(E2E.binary, ["plan", "-f", planPath, "--no-color"])
                #expect(plan.status == 0, "\(plan.all)")
                apply.terminate()
                apply.waitUntilExit()

                // destroy holds it too, with its own command line: the state records the host to destroy.
                let state = """
                    {"formatVersion": 1, "serial": 1, "lineage": "0b3c9a52-8f6e-4b43-9d0e-5b6a2f7c1d11", "toolVersion": "test",
                     "cluster": {"name": "locktest", "secrets": {}, "steps": {}},
                     "hosts": {"cp-1": {"address": "\(listener.address)", "port": \(listener.port), "role": "control-plane",
                                        "labels": {}, "taints": [], "steps": {}}},
                     "addons": {}, "manifests": {}}
                    """
                try state.write(toFile: work + "/.bootstrap/locktest.state.json", atomically: true, encoding: .utf8)
                let destroyer = try Self.start(["destroy", "-f", planPath, "--auto-approve", "--parallelism", "3"])
                defer { if destroyer.isRunning { destroyer.terminate() } }
                let destroyLine = "bootstrap destroy -f \(quotedPlan) --auto-approve --parallelism 3"
                #expect(Self.holderCommand(lockPath, while: destroyer) == destroyLine)
                let applied = try runProgram(E2E.binary, ["apply", "-f", planPath, "--auto-approve"])
                #expect(applied.status == 1, "\(applied.all)")
                #expect(applied.stderr.contains("locked by `\(destroyLine)`"), "\(applied.stderr)")
                destroyer.terminate()
                destroyer.waitUntilExit()
            }
        }

        static func start(_ args: [String]) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: E2E.binary)
            p.arguments = args
            p.standardInput = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }

        /// The `command` the lock file names once `process` has taken it (its pid there; a killed holder's
        /// record stays until the next holder replaces it), or nil if it never does within 30 s.
        static func holderCommand(_ lockPath: String, while process: Process) -> String? {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline && process.isRunning {
                if let data = FileManager.default.contents(atPath: lockPath), !data.isEmpty,
                   let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                   let command = object["command"] as? String,
                   (object["pid"] as? Int).map(Int32.init) == process.processIdentifier {
                    return command
                }
                usleep(50_000)
            }
            return nil
        }
    }
}

/// A TCP socket that is listened on and never accepted: connections complete (the kernel's backlog), and
/// nothing is ever said on them.
final class SilentListener: @unchecked Sendable {
    let address: String
    let port: Int
    private let fd: Int32

    init(address: String) throws {
        struct Failed: Error { var what: String; var errno: Int32 }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failed(what: "socket", errno: errno) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = 0
        guard inet_pton(AF_INET, address, &sin.sin_addr) == 1 else { throw Failed(what: "address \(address)", errno: EINVAL) }
        let bound = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw Failed(what: "bind/listen \(address)", errno: errno) }
        var got = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &got) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.fd = fd
        self.address = address
        port = Int(UInt16(bigEndian: got.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}
