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

    public init(parallelism: Int = PlanDefaults.parallelism, kubeconfigPath: String, readyTimeout: Duration = .seconds(600),
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
/// from their facts (in memory, as `plan --refresh` shows it; new hosts are still to be created), the
/// drift, and the `ApplyPlan` made from them: everything the run will do.
public struct Refreshed: Sendable {
    public var state: ClusterState
    public var drift: [HostDrift]
    /// The plan made from them: what runs once approved, and nothing else.
    public var plan: ApplyPlan
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
    /// The plan's hosts by name (the step graph looks one up per action).
    let hostsByName: [String: ClusterPlan.Host]

    public convenience init(plan: ClusterPlan, objects: [KubeObject] = [], runState: RunState,
                            transport: any HostTransport, resolve: @escaping EndpointResolver, options: ApplyOptions,
                            events: @escaping EventSink)
    {
        self.init(plan: plan, objects: objects, runState: runState, transport: transport, resolve: resolve,
                  options: options, events: events, redactor: Redactor())
    }

    /// The start/finish/fail events of every step.
    var stepEvents: StepEvents { StepEvents(events: events, redactor: redactor) }

    /// Runs to the end; every session opened is closed before this returns or throws, and the state's
    /// journal is folded into the state file (if that fails, the next load folds it).
    public func run() async throws -> RunReport {
        try await runState.checkpointing {
            try await SessionRegistry.withSessions { try await self.run(sessions: $0) }
        }
    }

    private func run(sessions: SessionRegistry) async throws -> RunReport {
        let clock = ContinuousClock()
        let started = clock.now
        let initial = await runState.state
        for rec in initial.cluster.secrets.values { redactor.add(rec.value) }

        // What the plan asks of the recorded state, and whether it is allowed: refused before any host is
        // contacted (the refresh cannot make a blocked change acceptable).
        let offline = ApplyPlan.make(plan: plan, state: initial, objects: objects)
        if let why = offline.refusal { throw EngineError.refused(why) }
        let removals = offline.removals

        // 1. Connect (plan hosts must all answer before anything changes), and 2. each host's facts as soon
        // as it is connected. The hosts' cluster addresses are known from here on: the rest runs with them.
        let (runners, oldRunners, facts) = try await connectPhase(removals, state: initial, sessions: sessions)
        let resolved = plan.resolvingPrivateAddresses(state: initial, facts: facts)
        return try await with(plan: resolved).run(initial: initial, removals: removals, facts: facts,
                                                  runners: runners, oldRunners: oldRunners, sessions: sessions,
                                                  started: started)
    }

    /// The same engine with the plan's private addresses resolved.
    private func with(plan resolved: ClusterPlan) -> ApplyEngine {
        ApplyEngine(plan: resolved, objects: objects, runState: runState, transport: transport, resolve: resolve,
                    options: options, events: events, redactor: redactor)
    }

    private init(plan: ClusterPlan, objects: [KubeObject], runState: RunState, transport: any HostTransport,
                 resolve: @escaping EndpointResolver, options: ApplyOptions, events: @escaping EventSink,
                 redactor: Redactor)
    {
        self.plan = plan
        self.objects = objects
        self.runState = runState
        self.transport = transport
        self.resolve = resolve
        self.options = options
        self.events = events
        self.redactor = redactor
        self.hostsByName = Dictionary(plan.spec.hosts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    private func run(initial: ClusterState, removals: [String], facts: [String: HostFacts],
                     runners: [String: HostRunner], oldRunners: [String: HostRunner], sessions: SessionRegistry,
                     started: ContinuousClock.Instant) async throws -> RunReport
    {
        let clock = ContinuousClock()
        // 3. Preflight: one report for all hosts, nothing changed on any error.
        try await preflightPhase(state: initial, facts: facts, runners: runners)

        // Drifted facts invalidate the steps they contradict. The plan again, from the refreshed state: it is
        // what runs, and all that runs. Asked for, then executed.
        let (hosts, drifts) = Refresh.records(plan: plan, state: initial, facts: facts, removals: Set(removals))
        for d in drifts { events(.drift(host: d.host, message: d.message)) }
        var shown = initial
        for (name, record) in hosts where initial.hosts[name] != nil { shown.hosts[name] = record }
        let kubeconfigPath = options.kubeconfigPath
        let kubeconfigMissing = initial.cluster.initializedOn != nil
            ? await !AtomicFile.queue.run { FileManager.default.fileExists(atPath: kubeconfigPath) } : false
        let applyPlan = ApplyPlan.make(plan: plan, state: shown, objects: objects, drift: drifts,
                                       kubeconfigMissing: kubeconfigMissing,
                                       kubeconfigStale: Certificates.adminRenewed(recorded: initial, refreshed: shown))
        if kubeconfigMissing, applyPlan.actions.contains(where: { $0.id == .clusterStep(.kubeconfig) }),
           !ClusterStepCatalogue.pending(in: plan, state: shown).contains(where: { $0.name == .kubeconfig })
        {
            events(.drift(host: plan.name, message: "\(options.kubeconfigPath) is missing; it is fetched again"))
        }
        if let why = applyPlan.refusal { throw EngineError.refused(why) }
        if let approve = options.approve {
            try await approve(Refreshed(state: shown, drift: drifts, plan: applyPlan))
        }
        // Record hosts and facts.
        try await recordHosts(hosts)

        // 4. The plan's actions, as a step graph; then the summary.
        let outcomes = try await stepsPhase(applyPlan, facts: facts, runners: runners, oldRunners: oldRunners,
                                            sessions: sessions)
        await recordNewCertificates(runners: runners)
        let summaries = summarize(applyPlan, outcomes: outcomes, elapsed: clock.now - started)
        let failures = applyPlan.actions.compactMap { a -> String? in
            if case .failed(let e)? = outcomes[a.id] { return "\(a.id): \(e)" }
            return nil
        }
        let changed = applyPlan.actions.contains { $0.id != .waitReady && outcomes[$0.id] == .succeeded }
        return RunReport(hosts: summaries, failures: failures, cancelled: options.cancellation.isCancelled,
                         changed: changed)
    }

    func summarize(_ applyPlan: ApplyPlan, outcomes: [ActionID: JobOutcome], elapsed: Duration) -> [HostSummary] {
        /// A row for a group of actions: done count, the first failure, skipped or not.
        func row(_ name: String, _ mine: [ActionID]) -> HostSummary {
            let done = mine.filter { outcomes[$0] == .succeeded }.count
            let failed = mine.lazy.compactMap { id -> String? in
                if case .failed(let e)? = outcomes[id] { return e }
                return nil
            }.first
            let skipped = mine.contains { if case .skipped? = outcomes[$0] { return true }; return false }
            let result: HostSummary.Result = failed != nil ? .failed : skipped ? .skipped : mine.isEmpty ? .unchanged : .ok
            return HostSummary(host: name, stepsDone: done, stepsPlanned: mine.count, result: result, elapsed: elapsed,
                               error: failed)
        }
        let ids = applyPlan.actions.map(\.id)
        var byHost: [String: [ActionID]] = [:]
        for id in ids { if let h = id.host { byHost[h, default: []].append(id) } }
        var rows = plan.spec.hosts.map { host in row(host.name, byHost[host.name] ?? []) }
        for name in applyPlan.removals where hostsByName[name] == nil {
            let outcome = outcomes[.removal(host: name)]
            var err: String?
            if case .failed(let e)? = outcome { err = e }
            rows.append(HostSummary(host: name, stepsDone: outcome == .succeeded ? 1 : 0, stepsPlanned: 1,
                                    result: outcome == .succeeded ? .removed : (err != nil ? .failed : .skipped),
                                    elapsed: elapsed, error: err))
        }
        // Cluster-wide work (Helm, releases, objects, the kubeconfig) gets a row of its own.
        let clusterWide = ids.filter { id in
            if id.host != nil || id == .waitReady { return false }
            if case .removal = id { return false }
            return true
        }
        if !clusterWide.isEmpty { rows.append(row("(cluster)", clusterWide)) }
        return rows
    }
}

extension HostRecord {
    /// The record without the facts that change as steps run.
    var stableProjection: HostRecord {
        var r = self
        r.facts?.packages = [:]
        r.facts?.swapOn = false
        r.facts?.inCluster = false
        // Read with the host's clock on every refresh: a new expiry is worth a write, a new reading time is not.
        r.facts?.certificates?.checkedAt = .distantPast
        return r
    }
}
