import BootstrapCore
import Foundation
@testable import BootstrapEngine

/// An in-memory host that answers the commands the engine sends, closely enough to drive the engine's
/// decisions: facts, file checks, kubeadm init/join (refusing a second one), kubectl get nodes, the clock.
final class FakeHost: @unchecked Sendable {
    let name: String
    let lock = NSLock()
    var files: Set<String> = []
    var log: [String] = []
    /// What each command received on its standard input, in order (nil: none).
    var stdins: [Data?] = []
    var inits = 0
    var joins = 0
    var clock: TimeInterval = 1_800_000_000
    var failOn: String?
    var machineID: String
    var cpus = 2
    var swapOn = false
    var closed = 0
    /// Bootstrap token IDs the cluster lost (deleted with `kubeadm token delete`).
    var deletedTokenIDs: Set<String> = []
    /// Commands containing `match` take `duration` to finish.
    var slow: (match: String, duration: Duration)?

    init(name: String) {
        self.name = name
        self.machineID = String(repeating: String(name.count), count: 8) + name
    }

    func handle(_ script: String, stdin: Data?) -> CommandResult {
        lock.withLock {
            log.append(script)
            stdins.append(stdin)
            if let f = failOn, script.contains(f) { return CommandResult(exitStatus: 1, stderr: Data("injected failure".utf8)) }
            if script.contains("/etc/os-release") {
                let facts = """
                    os.id=ubuntu
                    os.version=22.04
                    arch=x86_64
                    cpus=\(cpus)
                    mem.kb=4000000
                    swap.count=\(swapOn ? 1 : 0)
                    hostname=\(name)
                    machine-id=\(machineID)
                    product-uuid=uuid-\(name)
                    \(files.contains("pkgs") ? "pkg.kubeadm=1.34.1-1.1\npkg.kubelet=1.34.1-1.1\npkg.kubectl=1.34.1-1.1\npkg.containerd=1.7" : "")
                    \(files.contains("/etc/kubernetes/kubelet.conf") ? "in-cluster=yes" : "")
                    """
                return CommandResult(exitStatus: 0, stdout: Data(facts.utf8))
            }
            if script.hasPrefix("test -f ") {
                let path = String(script.dropFirst(8))
                return CommandResult(exitStatus: files.contains(path) ? 0 : 1)
            }
            if script == "date +%s" { return CommandResult(exitStatus: 0, stdout: Data("\(Int(clock))\n".utf8)) }
            if script.contains("kubeadm token list"), let r = script.range(of: #"id=([a-z0-9]{6})"#, options: .regularExpression) {
                let id = String(script[r].dropFirst(3))
                let present = deletedTokenIDs.contains(id) ? "absent" : "present"
                return CommandResult(exitStatus: 0, stdout: Data("now=\(Int(clock))\ntoken=\(present)\n".utf8))
            }
            if script.contains("openssl x509") {
                return CommandResult(exitStatus: 0, stdout: Data((String(repeating: "ab", count: 32) + "\n").utf8))
            }
            if script.contains("apt-get -o DPkg::Lock::Timeout=") && script.contains(" install ") && script.contains("kubeadm=") { files.insert("pkgs") }
            // The engine's one-shot wrapper skips the command when its marker file exists.
            if script.contains("kubeadm init --config") {
                if files.contains("/etc/kubernetes/admin.conf") { return CommandResult(exitStatus: 0, stdout: Data("bootstrap: already done".utf8)) }
                inits += 1
                files.formUnion(["/etc/kubernetes/admin.conf", "/etc/kubernetes/kubelet.conf"])
            }
            if script.contains("kubeadm join --config") {
                if files.contains("/etc/kubernetes/kubelet.conf") { return CommandResult(exitStatus: 0, stdout: Data("bootstrap: already done".utf8)) }
                joins += 1
                files.insert("/etc/kubernetes/kubelet.conf")
            }
            if script.contains("get nodes -o json") {
                return CommandResult(exitStatus: 0, stdout: Data(FakeCluster.shared.nodesJSON().utf8))
            }
            return CommandResult(exitStatus: 0)
        }
    }

    var commands: [String] { lock.withLock { log } }
}

/// Which nodes the fake API server reports Ready.
final class FakeCluster: @unchecked Sendable {
    nonisolated(unsafe) static var shared = FakeCluster()
    let lock = NSLock()
    var hosts: [FakeHost] = []
    /// Nodes reported NotReady.
    var notReady: Set<String> = []

    func nodesJSON() -> String {
        let (hosts, notReady) = lock.withLock { (self.hosts, self.notReady) }
        let items = hosts.filter { $0.files.contains("/etc/kubernetes/kubelet.conf") }.map { h in
            let ready = notReady.contains(h.name) ? "False" : "True"
            return #"{"metadata":{"name":"\#(h.name)"},"status":{"conditions":[{"type":"Ready","status":"\#(ready)"}]}}"#
        }
        return #"{"items":[\#(items.joined(separator: ","))]}"#
    }
}

final class FakeSession: HostSession, @unchecked Sendable {
    let endpoint: HostEndpoint
    let host: FakeHost
    init(endpoint: HostEndpoint, host: FakeHost) {
        self.endpoint = endpoint
        self.host = host
    }

    func run(_ command: ShellCommand, stdin: Data?, timeout: Duration?, output: OutputHandler?) async throws -> CommandResult {
        if let slow = host.lock.withLock({ host.slow }), command.script.contains(slow.match) {
            try await Task.sleep(for: slow.duration)
        }
        let r = host.handle(command.script, stdin: stdin)
        for line in r.stdoutText.split(separator: "\n") { output?(.stdout, String(line)) }
        return r
    }

    func upload(_ data: Data, to path: String, mode: Int) async throws {
        host.lock.withLock {
            host.files.insert(path)
            host.log.append("upload \(path)")
            host.stdins.append(nil)
        }
    }

    func download(_ path: String) async throws -> Data {
        Data("apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: lab\n".utf8)
    }

    func close() async { host.lock.withLock { host.closed += 1 } }
}

struct FakeTransport: HostTransport {
    let hosts: [String: FakeHost]
    var unreachable: Set<String> = []

    func connect(_ endpoint: HostEndpoint) async throws -> any HostSession {
        if unreachable.contains(endpoint.name) { throw EngineError.unreachable(host: endpoint.name, reason: "connection refused") }
        return FakeSession(endpoint: endpoint, host: hosts[endpoint.name]!)
    }
}

/// Keeps the state in memory and counts writes.
final class MemoryStore: StatePersisting, @unchecked Sendable {
    let lock = NSLock()
    var written: [ClusterState] = []
    var writes: [ClusterState] { lock.withLock { written } }
    func persist(_ state: ClusterState) async throws -> ClusterState {
        var s = state
        s.serial += 1
        lock.withLock { written.append(s) }
        return s
    }
}

/// Collects events.
final class EventLog: @unchecked Sendable {
    let lock = NSLock()
    var events: [EngineEvent] = []
    var sink: EventSink { { e in self.lock.withLock { self.events.append(e) } } }
    var all: [EngineEvent] { lock.withLock { events } }

    var text: String {
        all.map { e -> String in
            switch e {
            case .command(let h, let c): return "\(h)$ \(c)"
            case .output(let h, _, let l): return "\(h)> \(l)"
            case .stepFailed(let h, let s, _, let err): return "\(h) \(s) FAILED \(err)"
            default: return String(describing: e)
            }
        }.joined(separator: "\n")
    }

    var stepsRun: [String] {
        all.compactMap { if case .stepFinished(let h, let s, _, true) = $0 { return "\(h)/\(s)" }; return nil }
    }
}
