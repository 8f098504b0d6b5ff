import BootstrapCore
import Foundation

public struct ApplyOptions: Sendable {
    public var parallelism: Int
    /// Where to write the admin kubeconfig (`NAME.kubeconfig` beside the plan).
    public var kubeconfigPath: String
    /// How long to wait for every node to be Ready.
    public var readyTimeout: Duration
    public var readyPollInterval: Duration
    /// How often a step that waits (wait-ready, each Helm release) says what it still waits for.
    public var progressInterval: Duration
    public var cancellation: CancellationFlag
    /// Called once the hosts are connected, their facts read, drift shown and preflight passed, before
    /// anything changes on a host or in the state: the CLI shows what will run and asks. Throwing stops the
    /// run there, with nothing changed. nil: go ahead.
    public var approve: (@Sendable (Refreshed) async throws -> Void)?

    public init(parallelism: Int = 20, kubeconfigPath: String, readyTimeout: Duration = .seconds(600),
                readyPollInterval: Duration = .seconds(1), progressInterval: Duration = .seconds(10),
                cancellation: CancellationFlag = CancellationFlag(),
                approve: (@Sendable (Refreshed) async throws -> Void)? = nil) {
        self.parallelism = parallelism
        self.kubeconfigPath = kubeconfigPath
        self.readyTimeout = readyTimeout
        self.readyPollInterval = readyPollInterval
        self.progressInterval = progressInterval
        self.cancellation = cancellation
        self.approve = approve
    }
}

/// What the refresh found, for the approval: the recorded state with the hosts it already knew refreshed
/// from their facts (in memory, as `plan --refresh` shows it; new hosts are still to be created), and the
/// drift. `ChangeSet.diff` of it, explained by the drift, is everything the run will do.
public struct Refreshed: Sendable {
    public var state: ClusterState
    public var drift: [HostDrift]
}

/// One row of the summary table.
public struct HostSummary: Sendable, Hashable {
    public enum Result: String, Sendable, Hashable { case ok, unchanged, failed, skipped, removed }
    public var host: String
    public var stepsDone: Int
    public var stepsPlanned: Int
    public var result: Result
    public var elapsed: Duration
    public var error: String?
}

public struct RunReport: Sendable {
    public var hosts: [HostSummary]
    public var failures: [String]
    public var cancelled: Bool
    public var changed: Bool
    public var succeeded: Bool { failures.isEmpty && !cancelled }
}

/// Resolves how to reach a host by name, address and port (plan hosts and hosts only the state knows).
public typealias EndpointResolver = @Sendable (_ name: String, _ address: String, _ port: Int) -> HostEndpoint

/// Connects to hosts in parallel; one session per host for the whole run.
struct Connector {
    let transport: any HostTransport
    let events: EventSink
    let redactor: Redactor
    let parallelism: Int
    let sessions: SessionRegistry

    func connect(_ endpoints: [HostEndpoint]) async -> [String: Result<HostRunner, EngineError>] {
        var out: [String: Result<HostRunner, EngineError>] = [:]
        let transport = self.transport
        let events = self.events
        let redactor = self.redactor
        let sessions = self.sessions
        await withTaskGroup(of: (String, Result<HostRunner, EngineError>).self) { group in
            var pending = endpoints[...]
            var running = 0
            func startNext() {
                guard let ep = pending.popFirst() else { return }
                running += 1
                group.addTask {
                    let clock = ContinuousClock()
                    let t0 = clock.now
                    do {
                        let session = try await transport.connect(ep)
                        sessions.add(session)
                        events(.connected(host: ep.name, elapsed: clock.now - t0))
                        return (ep.name, .success(HostRunner(name: ep.name, session: session, events: events, redactor: redactor)))
                    } catch let e as EngineError {
                        return (ep.name, .failure(e))
                    } catch {
                        return (ep.name, .failure(.unreachable(host: ep.name,
                                                               reason: ErrorText.describe(error, about: ep.name))))
                    }
                }
            }
            for _ in 0..<max(1, parallelism) { startNext() }
            while let (name, result) = await group.next() {
                running -= 1
                out[name] = result
                startNext()
            }
        }
        return out
    }
}

/// The sessions a run opened, to close them all at the end.
final class SessionRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var sessions: [any HostSession] = []
    func add(_ s: any HostSession) { lock.withLock { sessions.append(s) } }
    func closeAll() async {
        let all = lock.withLock { let a = sessions; sessions = []; return a }
        for s in all { await s.close() }
    }

    /// Runs `body` and closes every session it opened before returning or throwing — not in a detached task,
    /// which could still be running while the process exits.
    static func withSessions<T: Sendable>(_ body: (SessionRegistry) async throws -> T) async throws -> T {
        let sessions = SessionRegistry()
        do {
            let result = try await body(sessions)
            await sessions.closeAll()
            return result
        } catch {
            await sessions.closeAll()
            throw error
        }
    }
}

/// `bootstrap apply`: connect, refresh facts, preflight, then the step graph.
public final class ApplyEngine: Sendable {
    let plan: ClusterPlan
    /// The Kubernetes objects to apply (`Manifests.desired`).
    let objects: [KubeObject]
    let runState: RunState
    let transport: any HostTransport
    let resolve: EndpointResolver
    let events: EventSink
    let options: ApplyOptions
    let redactor: Redactor

    public init(plan: ClusterPlan, objects: [KubeObject] = [], runState: RunState, transport: any HostTransport,
                resolve: @escaping EndpointResolver, options: ApplyOptions, events: @escaping EventSink)
    {
        self.plan = plan
        self.objects = objects
        self.runState = runState
        self.transport = transport
        self.resolve = resolve
        self.options = options
        self.events = events
        self.redactor = Redactor()
    }

    /// Runs to the end; every session opened is closed before this returns or throws.
    public func run() async throws -> RunReport {
        try await SessionRegistry.withSessions { try await self.run(sessions: $0) }
    }

    private func run(sessions: SessionRegistry) async throws -> RunReport {
        let clock = ContinuousClock()
        let started = clock.now
        let initial = await runState.state
        for rec in initial.cluster.secrets.values { redactor.add(rec.value) }

        // What the plan removes or replaces, and whether that is allowed.
        let removals = try Self.removals(plan: plan, state: initial)
        try Self.refuseUnsupported(plan: plan, state: initial, removals: removals)

        // 1. Connect (plan hosts must all answer before anything changes).
        events(.phase("connect"))
        let endpoints = plan.spec.hosts.map { h in resolve(h.name, h.address, plan.ssh(for: h).port) }
        // Machines to reset: hosts only the state knows, and the old machine of a replaced host.
        let oldEndpoints = removals.compactMap { name in initial.hosts[name].map { resolve(name, $0.address, $0.port) } }
        let connector = Connector(transport: transport, events: events, redactor: redactor, parallelism: options.parallelism,
                                  sessions: sessions)
        let connected = await connector.connect(endpoints)
        let connectedOld = await connector.connect(oldEndpoints)
        var runners: [String: HostRunner] = [:]
        var oldRunners: [String: HostRunner] = [:]
        var problems: [String] = []
        for ep in endpoints {
            switch connected[ep.name] {
            case .success(let r)?: runners[ep.name] = r
            case .failure(let e)?:
                events(.preflight(host: ep.name, severity: .error, message: ErrorText.describe(e, about: ep.name)))
                problems.append(e.description)
            case nil: break
            }
        }
        for ep in oldEndpoints {
            switch connectedOld[ep.name] {
            case .success(let r)?: oldRunners[ep.name] = r
            case .failure(let e)?:
                events(.preflight(host: ep.name, severity: .warning,
                                  message: "\(ErrorText.describe(e, about: ep.name)); its reset will fail and it stays in the state"))
            case nil: break
            }
        }
        if !problems.isEmpty { throw EngineError.preflightFailed(count: problems.count) }

        // 2. Facts, in parallel.
        events(.phase("facts"))
        let facts = try await Refresh.facts(of: plan.spec.hosts.compactMap { runners[$0.name] }, events: events)

        // 3. Preflight: one report for all hosts, nothing changed on any error.
        events(.phase("preflight"))
        let issues = await Preflight.check(plan: plan, state: initial, facts: facts, runners: runners)
        for i in issues { events(.preflight(host: i.host, severity: i.severity, message: i.message)) }
        let errors = issues.filter { $0.severity == .error }
        if !errors.isEmpty { throw EngineError.preflightFailed(count: errors.count) }

        // Drifted facts invalidate the steps they contradict. Everything that will run is now known: ask.
        let (hosts, drifts) = Refresh.records(plan: plan, state: initial, facts: facts, removals: Set(removals))
        for d in drifts { events(.drift(host: d.host, message: d.message)) }
        if let approve = options.approve {
            var shown = initial
            for (name, record) in hosts where initial.hosts[name] != nil { shown.hosts[name] = record }
            try await approve(Refreshed(state: shown, drift: drifts))
        }
        // Record hosts and facts.
        try await recordHosts(hosts)

        // 4. The step graph.
        events(.phase("apply"))
        let state = await runState.state
        let firstName = state.cluster.initializedOn ?? plan.firstControlPlane?.name
        let cluster = ClusterSession(plan: plan, runState: runState, redactor: redactor,
                                     firstControlPlane: firstName.flatMap { runners[$0] })
        var jobs: [Job] = []
        var planned: [String: Int] = [:]
        var previousCPJoin: String?
        let initJob = plan.firstControlPlane.map { "\($0.name)/\(StepName.initControlPlane.rawValue)" }
        var hostJobIDs: [String] = []

        for name in removals {
            let runner = oldRunners[name]
            jobs.append(Job(id: "remove/\(name)", subject: name) { [self] in
                try await self.removeHost(name, runner: runner, cluster: cluster)
            })
        }
        for host in plan.spec.hosts {
            guard let runner = runners[host.name], let f = facts[host.name], let os = NodeOSes.for(f) else { continue }
            let pending = StepCatalogue.pending(for: host, in: plan, record: state.hosts[host.name])
            planned[host.name] = pending.count
            let ctx = StepContext(plan: plan, host: host, runner: runner, os: os, cluster: cluster)
            var previous: String? = removals.contains(host.name) ? "remove/\(host.name)" : nil
            for step in pending {
                let id = "\(host.name)/\(step.name.rawValue)"
                var deps = previous.map { [$0] } ?? []
                switch step.name {
                case .joinWorker, .nodeConfig:
                    if let i = initJob, i != id { deps.append(i) }
                case .joinControlPlane:
                    if let i = initJob { deps.append(i) }
                    if let p = previousCPJoin { deps.append(p) }  // one control plane at a time
                    previousCPJoin = id
                default: break
                }
                jobs.append(Job(id: id, dependencies: deps, subject: host.name) { [self] in
                    try await self.runStep(StepKinds.step(step.name), ctx: ctx, inputHash: step.inputHash)
                })
                hostJobIDs.append(id)
                previous = id
            }
        }
        var clusterSteps = ClusterStepCatalogue.pending(in: plan, state: state)
        // The kubeconfig is a local file: fetched again when it was deleted, whatever the state says.
        if !clusterSteps.contains(where: { $0.name == .kubeconfig }), state.cluster.initializedOn != nil,
           !FileManager.default.fileExists(atPath: options.kubeconfigPath),
           let step = ClusterStepCatalogue.steps(in: plan).first(where: { $0.name == .kubeconfig })
        {
            events(.drift(host: plan.name, message: "\(options.kubeconfigPath) is missing; it is fetched again"))
            clusterSteps.append(step)
        }
        var clusterJobIDs: [String] = []
        for step in clusterSteps {
            let id = "cluster/\(step.name.rawValue)"
            jobs.append(Job(id: id, dependencies: initJob.map { [$0] } ?? []) { [self] in
                try await self.runClusterStep(step.name, inputHash: step.inputHash, cluster: cluster)
            })
            clusterJobIDs.append(id)
        }
        let (cniJobs, addonJobs) = releaseJobs(state: state, cluster: cluster, initJob: initJob,
                                               helmJob: clusterSteps.contains { $0.name == .helm } ? "cluster/helm" : nil)
        jobs += cniJobs + addonJobs
        if plan.firstControlPlane != nil {
            jobs.append(Job(id: Self.readyJob, dependencies: hostJobIDs + clusterJobIDs + cniJobs.map(\.id)) { [self] in
                try await self.waitReady(cluster: cluster)
            })
        }
        if let job = objectsJob(state: state, cluster: cluster, after: addonJobs.map(\.id)) { jobs.append(job) }

        let outcomes = await Scheduler.run(jobs, parallelism: options.parallelism, cancellation: options.cancellation)

        // 5. The summary.
        var failures: [String] = []
        for job in jobs {
            switch outcomes[job.id] {
            case .failed(let e)?: failures.append("\(job.id): \(e)")
            case .skipped(let why)? where why != "cancelled":
                events(.stepSkipped(host: String(job.id.split(separator: "/")[0]), step: String(job.id.split(separator: "/").last!), reason: why))
            default: break
            }
        }
        let summaries = summarize(jobs: jobs, outcomes: outcomes, planned: planned, removals: removals,
                                  elapsed: clock.now - started)
        let changed = jobs.contains { $0.id != Self.readyJob && outcomes[$0.id] == .succeeded }
        return RunReport(hosts: summaries, failures: failures, cancelled: options.cancellation.isCancelled,
                         changed: changed)
    }

    // MARK: phases

    /// Stores the refreshed host records (`Refresh.records`): new hosts, updated facts, forgotten steps.
    func recordHosts(_ next: [String: HostRecord]) async throws {
        let state = await runState.state
        // Volatile facts (installed packages, swap) alone are not worth a state write: a no-op apply must
        // leave the state as it was. They are stored with the next write.
        let hosts = next
        if next.mapValues(\.stableProjection) != state.hosts.mapValues(\.stableProjection) {
            try await runState.update { $0.hosts = hosts }
        } else if next != state.hosts {
            await runState.updateWithoutWriting { $0.hosts = hosts }
        }
    }

    func runStep(_ step: any HostStep, ctx: StepContext, inputHash: String) async throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        events(.stepStarted(host: ctx.host.name, step: step.name.rawValue))
        do {
            let result = try await step.run(ctx)
            try await runState.recordStep(host: ctx.host.name, step: step.name, inputHash: inputHash)
            events(.stepFinished(host: ctx.host.name, step: step.name.rawValue, elapsed: clock.now - t0,
                                 ran: result == .changed))
        } catch {
            events(.stepFailed(host: ctx.host.name, step: step.name.rawValue, elapsed: clock.now - t0,
                               error: redact(ErrorText.describe(error, about: ctx.host.name), redactor.secrets)))
            throw error
        }
    }

    func runClusterStep(_ name: ClusterStepName, inputHash: String, cluster: ClusterSession) async throws {
        try await onControlPlane(name.rawValue, cluster: cluster) { cp in
            switch name {
            case .helm:
                let limits = plan.spec.timeouts
                try await cp.run(HelmRecipes.install(limits: limits), timeout: .seconds(RemoteGuard.sessionLimit(limits.helm)))
            case .kubeconfig:
                let data = try await cp.download(NodeRecipes.adminKubeconfig)
                let text = Kubeconfig.pointing(String(decoding: data, as: UTF8.self), at: plan.apiEndpoint)
                try await AtomicFile.write(Data(text.utf8), to: options.kubeconfigPath, mode: 0o600, createDirectory: true)
            }
            try await runState.recordClusterStep(name, inputHash: inputHash)
        }
    }

    /// Waits until every plan node is Ready; on time-out says which are not and why.
    func waitReady(cluster: ClusterSession) async throws {
        let cp = try await cluster.controlPlaneRunner()
        let clock = ContinuousClock()
        let deadline = clock.now + options.readyTimeout
        let t0 = clock.now
        events(.stepStarted(host: cp.name, step: "wait-ready"))
        let names = Set(plan.spec.hosts.map(\.name))
        var notReady: [String: String] = [:]
        var nextProgress = t0 + options.progressInterval
        while true {
            let result = try await cp.probe(NodeRecipes.nodesJSON, timeout: .seconds(60))
            if result.succeeded {
                let status = NodeStatus.parse(result.stdout)
                notReady = [:]
                for n in names.sorted() {
                    switch status[n] {
                    case nil: notReady[n] = "not registered with the API server"
                    case .some((true, _)): break
                    case .some((false, let why)): notReady[n] = why
                    }
                }
                if notReady.isEmpty {
                    events(.stepFinished(host: cp.name, step: "wait-ready", elapsed: clock.now - t0, ran: false))
                    return
                }
            } else {
                notReady = ["(API server)": result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)]
            }
            if clock.now >= nextProgress {
                events(Self.readyProgress(host: cp.name, notReady: notReady, elapsed: clock.now - t0))
                while nextProgress <= clock.now { nextProgress += options.progressInterval }
            }
            if clock.now >= deadline || options.cancellation.isCancelled {
                let detail = notReady.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
                let err = EngineError.timeout("nodes not Ready after \(options.readyTimeout): \(detail)")
                events(.stepFailed(host: cp.name, step: "wait-ready", elapsed: clock.now - t0, error: err.description))
                throw err
            }
            try await Task.sleep(for: options.readyPollInterval)
        }
    }

    /// What wait-ready still waits for: the nodes not Ready yet (by name; their reasons are in the time-out
    /// error, should it come to that), or the API server when it did not answer.
    static func readyProgress(host: String, notReady: [String: String], elapsed: Duration) -> EngineEvent {
        if let api = notReady["(API server)"] {
            return .waiting(host: host, step: "wait-ready", message: "waiting for the API server to answer: \(api)",
                            awaiting: ["(API server)"], elapsed: elapsed)
        }
        let names = notReady.keys.sorted()
        let what = names.count == 1 ? "1 node" : "\(names.count) nodes"
        return .waiting(host: host, step: "wait-ready",
                        message: "waiting for \(what) to be Ready: \(names.joined(separator: ", "))",
                        awaiting: names, elapsed: elapsed)
    }

    /// Runs `body` (a long remote command such as `helm upgrade --install --wait`) and, while it runs, sends a
    /// `.waiting` event every `options.progressInterval`; none follows `body`'s return.
    @discardableResult
    func withProgress<T: Sendable>(host: String, step: String, message: String, awaiting: [String],
                                   _ body: () async throws -> T) async throws -> T {
        let interval = options.progressInterval
        let events = self.events
        let ticker = Task {
            let clock = ContinuousClock()
            let t0 = clock.now
            var next = t0 + interval
            while !Task.isCancelled {
                do { try await Task.sleep(until: next, clock: clock) } catch { return }
                events(.waiting(host: host, step: step, message: message, awaiting: awaiting, elapsed: clock.now - t0))
                next += interval
            }
        }
        // The ticker is stopped and waited for before returning, so no line about the step follows its end.
        do {
            let result = try await body()
            ticker.cancel()
            await ticker.value
            return result
        } catch {
            ticker.cancel()
            await ticker.value
            throw error
        }
    }

    /// The kubeadm procedure for removing a node: drain it (through the first control plane), reset the host,
    /// then delete the Node (deleted before the reset, its still-running kubelet would register it again), and
    /// forget it.
    func removeHost(_ name: String, runner: HostRunner?, cluster: ClusterSession) async throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        events(.stepStarted(host: name, step: "remove"))
        do {
            let cp = try? await cluster.controlPlaneRunner()
            let api = cp.flatMap { $0.name != name ? $0 : nil }
            if let api {
                _ = try await api.probe(NodeRecipes.drain(node: name), timeout: .seconds(180))
            }
            guard let runner else { throw EngineError.unreachable(host: name, reason: "not connected; kept in the state") }
            let os = await runState.state.hosts[name]?.facts.flatMap { NodeOSes.for($0) }
            let limits = plan.spec.timeouts
            try await runner.run(NodeRecipes.reset(os, purge: false, limits: limits),
                                 timeout: .seconds(RemoteGuard.sessionLimit(limits.join)))
            if let api { try await api.run(NodeRecipes.deleteNode(name)) }
            try await runState.update { $0.hosts[name] = nil }
            events(.stepFinished(host: name, step: "remove", elapsed: clock.now - t0, ran: true))
        } catch {
            events(.stepFailed(host: name, step: "remove", elapsed: clock.now - t0,
                               error: redact(ErrorText.describe(error, about: name), redactor.secrets)))
            throw error
        }
    }

    func summarize(jobs: [Job], outcomes: [String: JobOutcome], planned: [String: Int], removals: [String],
                   elapsed: Duration) -> [HostSummary]
    {
        /// A row for a group of jobs: done count, the first failure, skipped or not.
        func row(_ name: String, _ mine: [Job], planned: Int) -> HostSummary {
            let done = mine.filter { outcomes[$0.id] == .succeeded }.count
            let failed = mine.lazy.compactMap { job -> String? in
                if case .failed(let e)? = outcomes[job.id] { return e }
                return nil
            }.first
            let skipped = mine.contains { if case .skipped? = outcomes[$0.id] { return true }; return false }
            let result: HostSummary.Result = failed != nil ? .failed : skipped ? .skipped : mine.isEmpty ? .unchanged : .ok
            return HostSummary(host: name, stepsDone: done, stepsPlanned: planned, result: result, elapsed: elapsed,
                               error: failed)
        }
        var rows = plan.spec.hosts.map { host in
            row(host.name, jobs.filter { $0.id.hasPrefix(host.name + "/") }, planned: planned[host.name] ?? 0)
        }
        for name in removals where !plan.spec.hosts.contains(where: { $0.name == name }) {
            let outcome = outcomes["remove/\(name)"]
            var err: String?
            if case .failed(let e)? = outcome { err = e }
            rows.append(HostSummary(host: name, stepsDone: outcome == .succeeded ? 1 : 0, stepsPlanned: 1,
                                    result: outcome == .succeeded ? .removed : (err != nil ? .failed : .skipped),
                                    elapsed: elapsed, error: err))
        }
        // Cluster-wide work (Helm, releases, objects, the kubeconfig) gets a row of its own.
        let clusterWide = jobs.filter { job in
            job.id != Self.readyJob && !job.id.hasPrefix("remove/")
                && !plan.spec.hosts.contains { job.id.hasPrefix($0.name + "/") }
        }
        if !clusterWide.isEmpty { rows.append(row("(cluster)", clusterWide, planned: clusterWide.count)) }
        return rows
    }

    // MARK: rules

    /// Hosts to remove: in the state but not in the plan, or whose address or role changed (replace).
    static func removals(plan: ClusterPlan, state: ClusterState) throws -> [String] {
        var out: [String] = []
        for (name, rec) in state.hosts.sorted(by: { $0.key < $1.key }) {
            if let h = plan.spec.hosts.first(where: { $0.name == name }) {
                if h.address != rec.address || h.role != rec.role { out.append(name) }
            } else {
                out.append(name)
            }
        }
        // Workers first, then control planes.
        return out.sorted { (state.hosts[$0]?.role == .worker ? 0 : 1, $0) < (state.hosts[$1]?.role == .worker ? 0 : 1, $1) }
    }

    /// Changes apply cannot make, refused before any host is touched, with the reason.
    static func refuseUnsupported(plan: ClusterPlan, state: ClusterState, removals: [String]) throws {
        let c = state.cluster
        guard c.initializedOn != nil else { return }
        if let cni = c.cni, cni != plan.spec.network.cni.rawValue {
            throw EngineError.refused("changing the CNI of a live cluster (\(cni) → \(plan.spec.network.cni.rawValue)) is not supported: pods would lose their network. Destroy and apply again.")
        }
        if let pod = c.podSubnet, pod != plan.spec.network.podSubnet {
            throw EngineError.refused("changing the pod subnet of a live cluster (\(pod) → \(plan.spec.network.podSubnet)) is not supported: kubeadm and the CNI fixed it at init. Destroy and apply again.")
        }
        if let svc = c.serviceSubnet, svc != plan.spec.network.serviceSubnet {
            throw EngineError.refused("changing the service subnet of a live cluster (\(svc) → \(plan.spec.network.serviceSubnet)) is not supported. Destroy and apply again.")
        }
        if let v = c.kubernetesVersion, v != plan.spec.kubernetes.version {
            throw EngineError.refused("upgrading Kubernetes \(v) → \(plan.spec.kubernetes.version) is not supported by apply yet; keep version \(v) in the plan.")
        }
        if let first = c.initializedOn {
            if removals.contains(first) {
                throw EngineError.refused("\(first) ran kubeadm init and holds the cluster's first control plane; it cannot be removed or replaced. Destroy the cluster instead.")
            }
            if plan.firstControlPlane?.name != first {
                throw EngineError.refused("\(first) ran kubeadm init and must stay the first control plane listed in spec.hosts.")
            }
        }
        // Quorum: etcd keeps working only while a majority of its members remain.
        let cps = state.hosts.filter { $0.value.role == .controlPlane }.count
        let removedCPs = removals.filter { state.hosts[$0]?.role == .controlPlane }.count
        if removedCPs > 0 {
            let remaining = cps - removedCPs
            if remaining * 2 <= cps {
                throw EngineError.refused("removing \(removedCPs) of \(cps) control planes would leave \(remaining): etcd needs a majority (\(cps / 2 + 1)) to keep quorum. Remove one at a time, keeping a majority.")
            }
        }
    }
}

extension HostRecord {
    /// The record without the facts that change as steps run.
    var stableProjection: HostRecord {
        var r = self
        r.facts?.packages = [:]
        r.facts?.swapOn = false
        r.facts?.inCluster = false
        return r
    }
}

/// Node readiness from `kubectl get nodes -o json`.
enum NodeStatus {
    static func parse(_ data: Data) -> [String: (ready: Bool, reason: String)] {
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let items = obj["items"] as? [[String: Any]] else { return [:] }
        var out: [String: (Bool, String)] = [:]
        for item in items {
            guard let name = (item["metadata"] as? [String: Any])?["name"] as? String else { continue }
            let conditions = ((item["status"] as? [String: Any])?["conditions"] as? [[String: Any]]) ?? []
            if let ready = conditions.first(where: { $0["type"] as? String == "Ready" }) {
                let ok = ready["status"] as? String == "True"
                let why = [ready["reason"] as? String, ready["message"] as? String].compactMap { $0 }.joined(separator: ": ")
                out[name] = (ok, why.isEmpty ? "Ready is \(ready["status"] as? String ?? "Unknown")" : why)
            } else {
                out[name] = (false, "no Ready condition reported yet")
            }
        }
        return out
    }
}

/// The admin kubeconfig, pointed at the cluster's endpoint.
enum Kubeconfig {
    static func pointing(_ text: String, at endpoint: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("server:") else { return String(line) }
            let indent = line.prefix { $0 == " " }
            return "\(indent)server: https://\(endpoint)"
        }.joined(separator: "\n")
    }
}
