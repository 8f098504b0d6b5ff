import BootstrapCore
import Foundation
@testable import BootstrapEngine

/// An in-memory host that answers the commands the engine sends, closely enough to drive the engine's
/// decisions: facts, file checks, kubeadm init/join (refusing a second one), kubectl get nodes, the clock.
/// It runs one OS (`os`): only that OS's package manager exists on it, and its facts report versions the way
/// that OS's package query does.
final class FakeHost: @unchecked Sendable {
    /// An OS release a fake host runs, and its package tools.
    struct OS: Sendable, Hashable {
        var id: String
        var version: String
        /// `apt` or `dnf`
        var packageManager: String
        static let ubuntu2204 = OS(id: "ubuntu", version: "22.04", packageManager: "apt")
        static let ubuntu2404 = OS(id: "ubuntu", version: "24.04", packageManager: "apt")
        static let debian12 = OS(id: "debian", version: "12", packageManager: "apt")
        static let amazonLinux2023 = OS(id: "amzn", version: "2023", packageManager: "dnf")
        static let all = [ubuntu2204, ubuntu2404, debian12, amazonLinux2023]

        /// How the package manager is called, and how it is not.
        var tool: String { packageManager == "apt" ? "apt-get -o DPkg::Lock::Timeout=" : "dnf --setopt=exit_on_lock=True" }
        var otherTool: String { packageManager == "apt" ? "dnf " : "apt-get " }
        /// The facts script's query for this OS's installed packages.
        var query: String { packageManager == "apt" ? "dpkg-query -W" : "rpm -q --qf" }
        /// An installed Kubernetes 1.34.1 package's version, as the query prints it.
        var kubernetesVersion: String { packageManager == "apt" ? "1.34.1-1.1" : "1.34.1" }
        /// An install of the Kubernetes packages at that version.
        var installsKubernetes: String { packageManager == "apt" ? "kubeadm=1.34.1-1.1" : "kubeadm-1.34.1" }
    }

    let name: String
    var os: OS = .ubuntu2204
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
    /// What the facts report as the default route's address (nil: no default route).
    var defaultAddress: String?
    var closed = 0
    /// Bootstrap token IDs the cluster lost (deleted with `kubeadm token delete`).
    var deletedTokenIDs: Set<String> = []
    /// Commands containing `match` take `duration` to finish.
    var slow: (match: String, duration: Duration)?
    /// Sessions opened to this host, and how many of them were running a command at once at most.
    var sessionsOpened = 0
    var running = 0
    var mostRunning = 0
    /// What `kubectl get deployments,statefulsets,daemonsets` prints (`HelmRecipes.releaseWorkloads`).
    var workloads = ""

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
                let v = os.kubernetesVersion
                let packages = files.contains("pkgs") && script.contains(os.query)
                let facts = """
                    os.id=\(os.id)
                    os.version=\(os.version)
                    arch=x86_64
                    cpus=\(cpus)
                    mem.kb=4000000
                    swap.count=\(swapOn ? 1 : 0)
                    hostname=\(name)
                    machine-id=\(machineID)
                    product-uuid=uuid-\(name)
                    \(packages ? "pkg.kubeadm=\(v)\npkg.kubelet=\(v)\npkg.kubectl=\(v)\npkg.containerd=1.7" : "")
                    \(files.contains("/etc/kubernetes/kubelet.conf") ? "in-cluster=yes" : "")
                    default.address=\(defaultAddress ?? "")
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
            if script.contains(os.otherTool) {
                let tool = os.otherTool.trimmingCharacters(in: .whitespaces)
                return CommandResult(exitStatus: 127, stderr: Data("sh: \(tool): command not found".utf8))
            }
            if script.contains(os.tool) && script.contains(" install ") && script.contains(os.installsKubernetes) { files.insert("pkgs") }
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
            if script.contains("get deployments,statefulsets,daemonsets") {
                return CommandResult(exitStatus: 0, stdout: Data(workloads.utf8))
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
        host.lock.withLock {
            host.running += 1
            host.mostRunning = max(host.mostRunning, host.running)
        }
        defer { host.lock.withLock { host.running -= 1 } }
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
    /// Hosts that accept only this many sessions in a run.
    var sessionLimit: [String: Int] = [:]

    func connect(_ endpoint: HostEndpoint) async throws -> any HostSession {
        if unreachable.contains(endpoint.name) { throw EngineError.unreachable(host: endpoint.name, reason: "connection refused") }
        let host = hosts[endpoint.name]!
        let opened = host.lock.withLock { host.sessionsOpened }
        if let limit = sessionLimit[endpoint.name], opened >= limit {
            throw EngineError.unreachable(host: endpoint.name, reason: "too many sessions")
        }
        host.lock.withLock { host.sessionsOpened += 1 }
        return FakeSession(endpoint: endpoint, host: host)
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
