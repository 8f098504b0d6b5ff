import BootstrapCore
import Foundation
import BootstrapEngine

/// An in-memory host (shared by the engine tests and `bootstrap-bench engine`) that answers the commands the engine sends, closely enough to drive the engine's
/// decisions: facts, file checks, kubeadm init/join (refusing a second one), kubectl get nodes, the clock.
/// It runs one OS (`os`): only that OS's package manager exists on it, and its facts report versions the way
/// that OS's package query does.
public final class FakeHost: @unchecked Sendable {
    /// An OS release a fake host runs, and its package tools.
    public struct OS: Sendable, Hashable {
        public var id: String
        public var version: String
        /// `apt` or `dnf`
        public var packageManager: String

        public init(id: String, version: String, packageManager: String) {
            self.id = id
            self.version = version
            self.packageManager = packageManager
        }
        public static let ubuntu2204 = OS(id: "ubuntu", version: "22.04", packageManager: "apt")
        public static let ubuntu2404 = OS(id: "ubuntu", version: "24.04", packageManager: "apt")
        public static let debian12 = OS(id: "debian", version: "12", packageManager: "apt")
        public static let amazonLinux2023 = OS(id: "amzn", version: "2023", packageManager: "dnf")
        public static let all = [ubuntu2204, ubuntu2404, debian12, amazonLinux2023]

        /// How the package manager is called, and how it is not.
        public var tool: String { packageManager == "apt" ? "apt-get -o DPkg::Lock::Timeout=" : "dnf --setopt=exit_on_lock=True" }
        public var otherTool: String { packageManager == "apt" ? "dnf " : "apt-get " }
        /// The facts script's query for this OS's installed packages.
        public var query: String { packageManager == "apt" ? "dpkg-query -W" : "rpm -q --qf" }
        /// An installed Kubernetes 1.34.1 package's version, as the query prints it.
        public var kubernetesVersion: String { packageManager == "apt" ? "1.34.1-1.1" : "1.34.1" }
        /// An install of the Kubernetes packages at that version.
        public var installsKubernetes: String { packageManager == "apt" ? "kubeadm=1.34.1-1.1" : "kubeadm-1.34.1" }
    }

    public let name: String
    public var os: OS = .ubuntu2204
    public let lock = NSLock()
    public var files: Set<String> = []
    public var log: [String] = []
    /// What each command received on its standard input, in order (nil: none).
    public var stdins: [Data?] = []
    public var inits = 0
    public var joins = 0
    public var clock: TimeInterval = 1_800_000_000
    public var failOn: String?
    public var machineID: String
    public var cpus = 2
    public var swapOn = false
    /// What the facts report as the default route's address (nil: no default route).
    public var defaultAddress: String?
    public var closed = 0
    /// Bootstrap token IDs the cluster lost (deleted with `kubeadm token delete`).
    public var deletedTokenIDs: Set<String> = []
    /// Commands containing `match` take `duration` to finish.
    public var slow: (match: String, duration: Duration)?
    /// Sessions opened to this host, and how many of them were running a command at once at most.
    public var sessionsOpened = 0
    /// Each finished command matching `spanMatch`: the session it ran on (`FakeSession.id`), when it
    /// started and ended.
    public var spanMatch: String?
    public var spans: [(session: Int, script: String, start: ContinuousClock.Instant, end: ContinuousClock.Instant)] = []
    /// Commands a session was given while it ran another (a real SSH session runs one at a time).
    public var sessionOverlaps = 0
    public var running = 0
    public var mostRunning = 0
    /// What `kubectl get deployments,statefulsets,daemonsets` prints (`HelmRecipes.releaseWorkloads`).
    public var workloads = ""
    /// Whether `log` and `stdins` keep every command (off for thousands of hosts in `bootstrap-bench engine`).
    public var keepsLog = true
    /// The patch releases the Kubernetes package repository of a minor carries (nil: 0 to the newest
    /// `KubernetesReleases` knows), as the repository query (`NodeOS.repositoryVersionsQuery`) lists them.
    public var repositoryPatches: [String: [Int]] = [:]
    /// The kubelet package's version when it was changed by hand (the facts report it until the next install).
    public var kubeletByHand: String?

    public init(name: String) {
        self.name = name
        self.machineID = String(repeating: String(name.count), count: 8) + name
    }

    public func handle(_ script: String, stdin: Data?) -> CommandResult {
        lock.withLock {
            if keepsLog {
                log.append(script)
                stdins.append(stdin)
            }
            if let f = failOn, script.has(f) { return CommandResult(exitStatus: 1, stderr: Data("injected failure".utf8)) }
            if script.has("/etc/os-release") {
                let v = os.kubernetesVersion
                let packages = files.contains("pkgs") && script.has(os.query)
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
                    \(packages ? "pkg.kubeadm=\(v)\npkg.kubelet=\(kubeletByHand ?? v)\npkg.kubectl=\(v)\npkg.containerd=1.7" : "")
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
            if script.has("kubeadm token list"), let r = script.range(of: #"id=([a-z0-9]{6})"#, options: .regularExpression) {
                let id = String(script[r].dropFirst(3))
                let present = deletedTokenIDs.contains(id) ? "absent" : "present"
                return CommandResult(exitStatus: 0, stdout: Data("now=\(Int(clock))\ntoken=\(present)\n".utf8))
            }
            if script.has("openssl x509") {
                let hash = String(repeating: "ab", count: 32)
                // With the clock (`NodeRecipes.clockAndCACertHash`) or alone.
                let out = script.has("now=$(date +%s)") ? "now=\(Int(clock))\nhash=\(hash)\n" : hash + "\n"
                return CommandResult(exitStatus: 0, stdout: Data(out.utf8))
            }
            if script.has("apt-cache \"$@\" madison") || script.has("list --showduplicates"),
               let r = script.range(of: #"/stable:/v[0-9]+\.[0-9]+/"#, options: .regularExpression)
            {
                let minor = String(script[r].dropFirst(10).dropLast())
                let patches = repositoryPatches[minor] ?? KubernetesReleases.info(minor).map { Array(0...$0.latestPatch) } ?? []
                let lines = patches.map { p in
                    os.packageManager == "apt"
                        ? "   kubeadm | \(minor).\(p)-1.1 | https://pkgs.k8s.io/core:/stable:/v\(minor)/deb  Packages"
                        : "kubeadm.x86_64    \(minor).\(p)-150500.1.1    bootstrap-kubernetes-\(minor)"
                }
                let head = os.packageManager == "apt" ? [] : ["Available Packages"]
                return CommandResult(exitStatus: 0, stdout: Data((head + lines).joined(separator: "\n").utf8 + [10]))
            }
            if script.has(os.otherTool) {
                let tool = os.otherTool.trimmingCharacters(in: .whitespaces)
                return CommandResult(exitStatus: 127, stderr: Data("sh: \(tool): command not found".utf8))
            }
            if script.has(os.tool) && script.has(" install ") && script.has(os.installsKubernetes) {
                files.insert("pkgs")
                kubeletByHand = nil
            }
            // The engine's one-shot wrapper skips the command when its marker file exists.
            if script.has("kubeadm init --config") {
                if files.contains("/etc/kubernetes/admin.conf") { return CommandResult(exitStatus: 0, stdout: Data("bootstrap: already done".utf8)) }
                inits += 1
                files.formUnion(["/etc/kubernetes/admin.conf", "/etc/kubernetes/kubelet.conf"])
            }
            if script.has("kubeadm join --config") {
                if files.contains("/etc/kubernetes/kubelet.conf") { return CommandResult(exitStatus: 0, stdout: Data("bootstrap: already done".utf8)) }
                joins += 1
                files.insert("/etc/kubernetes/kubelet.conf")
            }
            if script.has("get deployments,statefulsets,daemonsets") {
                return CommandResult(exitStatus: 0, stdout: Data(workloads.utf8))
            }
            if script.has("get nodes -o json") {
                return CommandResult(exitStatus: 0, stdout: Data(FakeCluster.shared.nodesJSON().utf8))
            }
            return CommandResult(exitStatus: 0)
        }
    }

    public var commands: [String] { lock.withLock { log } }
}

/// Which nodes the fake API server reports Ready.
public final class FakeCluster: @unchecked Sendable {
    public nonisolated(unsafe) static var shared = FakeCluster()
    public let lock = NSLock()
    public var hosts: [FakeHost] = []
    /// Nodes reported NotReady.
    public var notReady: Set<String> = []

    public init() {}

    public func nodesJSON() -> String {
        let (hosts, notReady) = lock.withLock { (self.hosts, self.notReady) }
        let items = hosts.filter { $0.files.contains("/etc/kubernetes/kubelet.conf") }.map { h in
            let ready = notReady.contains(h.name) ? "False" : "True"
            return #"{"metadata":{"name":"\#(h.name)"},"status":{"conditions":[{"type":"Ready","status":"\#(ready)"}]}}"#
        }
        return #"{"items":[\#(items.joined(separator: ","))]}"#
    }
}

public final class FakeSession: HostSession, @unchecked Sendable {
    public let endpoint: HostEndpoint
    public let host: FakeHost
    /// Which of the host's sessions this is (1: the first opened).
    public let id: Int
    private var active = 0
    public init(endpoint: HostEndpoint, host: FakeHost, id: Int = 0) {
        self.endpoint = endpoint
        self.host = host
        self.id = id
    }

    public func run(_ command: ShellCommand, stdin: Data?, timeout: Duration?, output: OutputHandler?) async throws -> CommandResult {
        let start = ContinuousClock.now
        host.lock.withLock {
            host.running += 1
            host.mostRunning = max(host.mostRunning, host.running)
            active += 1
            if active > 1 { host.sessionOverlaps += 1 }
        }
        defer { host.lock.withLock { host.running -= 1; active -= 1 } }
        if let slow = host.lock.withLock({ host.slow }), command.script.contains(slow.match) {
            try await Task.sleep(for: slow.duration)
        }
        let r = host.handle(command.script, stdin: stdin)
        host.lock.withLock {
            if let m = host.spanMatch, command.script.contains(m) {
                host.spans.append((id, command.script, start, ContinuousClock.now))
            }
        }
        for line in r.stdoutText.split(separator: "\n") { output?(.stdout, String(line)) }
        return r
    }

    public func upload(_ data: Data, to path: String, mode: Int) async throws {
        host.lock.withLock {
            host.files.insert(path)
            if host.keepsLog {
                host.log.append("upload \(path)")
                host.stdins.append(nil)
            }
        }
    }

    public func download(_ path: String) async throws -> Data {
        Data("apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: lab\n".utf8)
    }

    public func close() async { host.lock.withLock { host.closed += 1 } }
}

public struct FakeTransport: HostTransport {
    public let hosts: [String: FakeHost]
    public var unreachable: Set<String> = []
    /// Hosts that accept only this many sessions in a run.
    public var sessionLimit: [String: Int] = [:]
    /// How long connecting to a host takes (none when absent).
    public var connectDelay: [String: Duration] = [:]

    public init(hosts: [String: FakeHost], unreachable: Set<String> = [], sessionLimit: [String: Int] = [:]) {
        self.hosts = hosts
        self.unreachable = unreachable
        self.sessionLimit = sessionLimit
    }

    public func connect(_ endpoint: HostEndpoint) async throws -> any HostSession {
        if let delay = connectDelay[endpoint.name] { try await Task.sleep(for: delay) }
        if unreachable.contains(endpoint.name) { throw EngineError.unreachable(host: endpoint.name, reason: "connection refused") }
        let host = hosts[endpoint.name]!
        let opened = host.lock.withLock { host.sessionsOpened }
        if let limit = sessionLimit[endpoint.name], opened >= limit {
            throw EngineError.unreachable(host: endpoint.name, reason: "too many sessions")
        }
        let id = host.lock.withLock { host.sessionsOpened += 1; return host.sessionsOpened }
        return FakeSession(endpoint: endpoint, host: host, id: id)
    }
}


extension String {
    /// Substring search on the UTF-8 bytes: Foundation's `contains` is the fake's main cost at 5,000 hosts
    /// (the engine benchmark uses it too).
    public func has(_ part: String) -> Bool {
        var whole = self
        var part = part
        return whole.withUTF8 { a in
            part.withUTF8 { b in
                guard let first = b.first else { return true }
                guard b.count <= a.count else { return false }
                for i in 0...(a.count - b.count) where a[i] == first {
                    var j = 1
                    while j < b.count, a[i + j] == b[j] { j += 1 }
                    if j == b.count { return true }
                }
                return false
            }
        }
    }
}
