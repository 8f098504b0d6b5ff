import BootstrapCore
import BootstrapEngine
import BootstrapFakeHosts
import Foundation
import Glibc

/// The engine alone on many hosts: the real `ApplyEngine` and `StateStore` (on a temp dir), in-process hosts
/// (`FakeHost`: they answer like healthy Ubuntu 22.04 hosts) that answer each command after a delay
/// modelled on the lab's realistic profile. No lab, no sshd: what it measures is bootstrap's own cost.
enum EngineBenchmark {
    struct Options: Sendable {
        var hosts: Int
        /// Every delay of the profile is multiplied by this.
        var scale: Double
        /// Steps at once; 0: as many as hosts (then the critical path is reachable).
        var parallelism: Int
        var dir: String
    }

    struct Result: Sendable {
        var hosts: Int
        var wall: Double
        var criticalPath: Double
        var cpu: Double
        /// Of `cpu`, the time spent inside the fake hosts' answers (not bootstrap's).
        var fakeCPU: Double
        var peakRSSMiB: Double
        /// Whole state files written, and journal records appended.
        var writes: (whole: Int, journal: Int)
        var bytesWritten: Int
        var stateBytes: Int
        var events: Int
        var succeeded: Bool

        var line: String {
            let own = cpu - fakeCPU
            return String(format: "engine %5d hosts: wall %7.2f s, critical path %7.2f s (%.2f×), CPU %7.2f s "
                + "(%.2f ms/host; fake hosts %.2f s), peak RSS %6.0f MiB, state writes %d whole + %d journal, bytes written %@, "
                + "state file %@, events %d%@",
                hosts, wall, criticalPath, wall / max(criticalPath, 0.001), own, own / Double(hosts) * 1000,
                fakeCPU, peakRSSMiB, writes.whole, writes.journal, Self.size(bytesWritten) as NSString, Self.size(stateBytes) as NSString,
                events, succeeded ? "" : " — THE RUN FAILED")
        }

        static func size(_ n: Int) -> String {
            n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / 1_048_576) : String(format: "%.1f KiB", Double(n) / 1024)
        }
    }

    /// Seconds a command takes on a healthy host, before `scale`: a round trip for anything, plus roughly what
    /// the lab's realistic profile charges for the long ones (one package transaction with its index update
    /// 15.5 s, containerd configured 1 s, images 5 s, init 25.7 s, join 8.4 s; lab/README.md).
    static func delay(for script: String) -> Double {
        var d = 0.05
        if script.has("kubeadm init --config") { d += 25.7 }
        else if script.has("kubeadm join --config") { d += 8.4 }
        else if script.has("SystemdCgroup") { d += 1 }
        else if script.has(" install ") && script.has("kubeadm") { d += 15.5 }
        else if script.has("images pull") || script.has("crictl") { d += 5 }
        else if script.has("pkgs.k8s.io") { d += 0.5 }
        else if script.has("helm upgrade --install") { d += 5 }
        return d
    }

    static let connectDelay = 0.2

    static func plan(hosts: Int, parallelism: Int) -> ClusterPlan {
        var list: [ClusterPlan.Host] = []
        for i in 0..<hosts {
            let cp = i < min(3, hosts)
            list.append(.init(name: cp ? "cp-\(i + 1)" : "worker-\(i - 2)",
                              address: "172.16.\(i / 250).\(i % 250 + 1)",
                              role: cp ? .controlPlane : .worker, labels: i % 10 == 0 ? ["tier": "batch"] : [:]))
        }
        return ClusterPlan(metadata: .init(name: "bench"), spec: .init(
            kubernetes: .init(version: "1.34.1", controlPlaneEndpoint: "api.bench.internal:6443"),
            network: .init(podSubnet: "10.0.0.0/8", serviceSubnet: "172.31.0.0/16"),
            hosts: list, parallelism: parallelism))
    }

    /// One run. `calibrate`: step by step (parallelism 1), timing what each job waits on its hosts.
    static func run(_ o: Options, calibrate: Bool = false) async throws -> (Result, Calibration) {
        let parallelism = calibrate ? 1 : (o.parallelism > 0 ? o.parallelism : o.hosts)
        let plan = plan(hosts: o.hosts, parallelism: parallelism)
        var fakes: [String: FakeHost] = [:]
        for h in plan.spec.hosts {
            let f = FakeHost(name: h.name)
            f.keepsLog = false
            fakes[h.name] = f
        }
        FakeCluster.shared = FakeCluster()
        FakeCluster.shared.hosts = Array(fakes.values)
        let meter = Meter(scale: o.scale)
        let transport = BenchTransport(inner: FakeTransport(hosts: fakes), meter: meter)

        try FileManager.default.createDirectory(atPath: o.dir, withIntermediateDirectories: true)
        let statePath = o.dir + "/.bootstrap/bench.state.json"
        let store = StateStore(path: statePath)
        try await store.lock(command: "bootstrap-bench engine")
        defer { store.unlock() }
        _ = try await store.load(expectName: "bench")
        let counting = CountingStore(store: store)
        let runState = RunState(state: ClusterState(name: "bench", toolVersion: "bench"), store: counting)
        let engine = ApplyEngine(
            plan: plan, runState: runState, transport: transport,
            resolve: { n, a, p in HostEndpoint(name: n, address: a, port: p, user: "root", knownHostsPath: "/dev/null") },
            options: ApplyOptions(parallelism: parallelism, kubeconfigPath: o.dir + "/bench.kubeconfig",
                                  readyTimeout: .seconds(600), readyPollInterval: .milliseconds(200)),
            events: meter.sink)

        let io0 = ProcessIO.read()
        let cpu0 = Usage.cpu()
        let t0 = ContinuousClock.now
        let report = try await engine.run()
        let wall = (ContinuousClock.now - t0).seconds
        let cpu = Usage.cpu() - cpu0
        let io1 = ProcessIO.read()
        let size = (try? FileManager.default.attributesOfItem(atPath: statePath)[.size] as? Int) ?? 0
        let result = Result(hosts: o.hosts, wall: wall, criticalPath: 0, cpu: cpu, fakeCPU: meter.fakeCPU,
                            peakRSSMiB: Usage.peakRSSMiB(), writes: counting.writes,
                            bytesWritten: io1.written - io0.written, stateBytes: size, events: meter.events,
                            succeeded: report.succeeded)
        if !report.succeeded { FileHandle.standardError.write(Data("\(report.failures.prefix(3))\n".utf8)) }
        return (result, meter.calibration)
    }

    /// The critical path of `plan` on hosts that answer as timed in `calibration` (a run of the same shape
    /// with 3 control planes and 2 workers, one job at a time): the longest chain of the step graph, plus
    /// connecting, reading facts and preflight, each one round on every host at once.
    static func criticalPath(hosts: Int, calibration: Calibration) -> Double {
        let plan = plan(hosts: hosts, parallelism: hosts)
        let state = ClusterState(name: "bench", toolVersion: "bench")
        let actions = ApplyPlan.make(plan: plan, state: state, objects: []).actions
        func calibrated(_ host: String) -> String {
            guard host.hasPrefix("worker-"), let n = Int(host.dropFirst(7)), n > 2 else { return host }
            return "worker-2"
        }
        var finish: [ActionID: Double] = [:]
        var pending = actions
        while !pending.isEmpty {
            var next: [PlannedAction] = []
            for a in pending {
                if a.after.allSatisfy({ finish[$0] != nil }) {
                    let host = a.id.host.map(calibrated) ?? "cp-1"
                    let own = calibration.job["\(host)|\(a.id.stepLabel)"] ?? 0
                    finish[a.id] = (a.after.map { finish[$0]! }.max() ?? 0) + own
                } else {
                    next.append(a)
                }
            }
            if next.count == pending.count { break }
            pending = next
        }
        return connectDelay * calibration.scale + (calibration.before.values.max() ?? 0) + (finish.values.max() ?? 0)
    }
}

/// What the calibration run found: the hosts' time per job (`host|step`), and per host before the steps.
struct Calibration: Sendable {
    var scale: Double
    var job: [String: Double] = [:]
    var before: [String: Double] = [:]

    mutating func rescale(by factor: Double) {
        scale *= factor
        job = job.mapValues { $0 * factor }
        before = before.mapValues { $0 * factor }
    }
}

/// Counts events, charges each command's delay to the job that runs (meaningful one job at a time), and
/// adds up the CPU time spent in the fake hosts.
final class Meter: @unchecked Sendable {
    let scale: Double
    private let lock = NSLock()
    private var count = 0
    private var current: String?
    private var stepsStarted = false
    private var cal: Calibration
    private var fake: Double = 0

    init(scale: Double) {
        self.scale = scale
        cal = Calibration(scale: scale)
    }

    var events: Int { lock.withLock { count } }
    var fakeCPU: Double { lock.withLock { fake } }
    var calibration: Calibration { lock.withLock { cal } }

    var sink: EventSink {
        { e in
            self.lock.withLock {
                self.count += 1
                switch e {
                case .phase(let p): if p == "apply" { self.stepsStarted = true }
                case .stepStarted(let h, let s): self.current = "\(h)|\(s)"
                case .stepFinished, .stepFailed: self.current = nil
                default: break
                }
            }
        }
    }

    func charge(host: String, seconds: Double) {
        lock.withLock {
            if let c = current { cal.job[c, default: 0] += seconds } else if !stepsStarted { cal.before[host, default: 0] += seconds }
        }
    }

    func addFakeCPU(_ s: Double) { lock.withLock { fake += s } }
}

/// The fake hosts behind the profile's delays; the time spent in their answers is measured apart.
struct BenchTransport: HostTransport {
    let inner: FakeTransport
    let meter: Meter

    func connect(_ endpoint: HostEndpoint) async throws -> any HostSession {
        try await Task.sleep(for: .seconds(EngineBenchmark.connectDelay * meter.scale))
        return BenchSession(inner: try await inner.connect(endpoint), meter: meter)
    }
}

final class BenchSession: HostSession, @unchecked Sendable {
    let inner: any HostSession
    let meter: Meter
    var endpoint: HostEndpoint { inner.endpoint }

    init(inner: any HostSession, meter: Meter) {
        self.inner = inner
        self.meter = meter
    }

    private func wait(_ script: String) async throws {
        // Choosing the delay is the hosts' work too.
        let t = Usage.threadCPU()
        let d = EngineBenchmark.delay(for: script) * meter.scale
        meter.addFakeCPU(Usage.threadCPU() - t)
        meter.charge(host: endpoint.name, seconds: d)
        try await Task.sleep(for: .seconds(d))
    }

    func run(_ command: ShellCommand, stdin: Data?, timeout: Duration?, output: OutputHandler?) async throws -> CommandResult {
        try await wait(command.script)
        // The fake answers without suspending: the thread's CPU time around it is the fake's own (and its
        // output lines' events).
        let t = Usage.threadCPU()
        let r = try await inner.run(command, stdin: stdin, timeout: timeout, output: output)
        meter.addFakeCPU(Usage.threadCPU() - t)
        return r
    }

    func upload(_ data: Data, to path: String, mode: Int) async throws {
        try await wait("upload")
        try await inner.upload(data, to: path, mode: mode)
    }

    func download(_ path: String) async throws -> Data {
        try await wait("download")
        return try await inner.download(path)
    }

    func close() async { await inner.close() }
}

/// Counts the state writes the run makes: whole files and journal records.
final class CountingStore: StatePersisting, @unchecked Sendable {
    let store: StateStore
    private let lock = NSLock()
    private var whole = 0
    private var records = 0
    var writes: (whole: Int, journal: Int) { lock.withLock { (whole, records) } }
    init(store: StateStore) { self.store = store }

    func persist(_ state: ClusterState) async throws -> ClusterState {
        lock.withLock { whole += 1 }
        return try await store.persist(state)
    }

    func append(_ changes: [StateChange], lineage: String, serial: Int) async throws -> Int? {
        let serial = try await store.append(changes, lineage: lineage, serial: serial)
        if serial != nil { lock.withLock { records += 1 } }
        return serial
    }

    func fold(_ state: ClusterState) async throws -> ClusterState {
        lock.withLock { whole += 1 }
        return try await store.fold(state)
    }
}

enum Usage {
    static func cpu() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return seconds(u.ru_utime) + seconds(u.ru_stime)
    }

    static func peakRSSMiB() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_maxrss) / 1024
    }

    static func threadCPU() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private static func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
}

/// Bytes this process wrote through write(2) and friends (`wchar` of /proc/self/io).
enum ProcessIO {
    static func read() -> (written: Int, calls: Int) {
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return (0, 0) }
        var kv: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { kv[parts[0]] = Int(parts[1]) }
        }
        return (kv["wchar"] ?? 0, kv["syscw"] ?? 0)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
