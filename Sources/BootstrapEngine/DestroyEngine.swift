import BootstrapCore
import Foundation

public struct DestroyOptions: Sendable {
    public var parallelism: Int
    /// Also remove the Kubernetes packages and repository.
    public var purge: Bool
    /// The local kubeconfig to remove.
    public var kubeconfigPath: String?
    public var cancellation: CancellationFlag
    /// The plan's time limits (the reset runs under the join limit).
    public var limits: ClusterPlan.Timeouts

    public init(parallelism: Int = PlanDefaults.parallelism, purge: Bool = false, kubeconfigPath: String? = nil,
                cancellation: CancellationFlag = CancellationFlag(), limits: ClusterPlan.Timeouts = .init()) {
        self.parallelism = parallelism
        self.purge = purge
        self.kubeconfigPath = kubeconfigPath
        self.cancellation = cancellation
        self.limits = limits
    }
}

/// `bootstrap destroy`: workers first (in parallel), then the joined control planes one at a time, then the
/// first control plane. Each node is drained while the API answers, reset, then deleted. A host that
/// cannot be reached stays in the state so a later destroy can finish; the rest is forgotten.
public final class DestroyEngine: Sendable {
    let runState: RunState
    let transport: any HostTransport
    let resolve: EndpointResolver
    let options: DestroyOptions
    let events: EventSink
    let redactor = Redactor()

    public init(runState: RunState, transport: any HostTransport, resolve: @escaping EndpointResolver,
                options: DestroyOptions, events: @escaping EventSink) {
        self.runState = runState
        self.transport = transport
        self.resolve = resolve
        self.options = options
        self.events = events
    }

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
        let state = await runState.state
        for rec in state.cluster.secrets.values { redactor.add(rec.value) }
        let first = state.cluster.initializedOn
        let names = state.hosts.keys.sorted()
        let workers = names.filter { state.hosts[$0]?.role == .worker }
        let order = Planner.workersFirst(names.filter { $0 != first }, role: { state.hosts[$0]?.role ?? .worker })
            + (first.map { state.hosts[$0] != nil ? [$0] : [] } ?? [])

        events(.phase("connect"))
        let endpoints = order.compactMap { n in state.hosts[n].map { resolve(n, $0.address, $0.port) } }
        let connector = Connector(transport: transport, events: events, redactor: redactor, parallelism: options.parallelism,
                                  sessions: sessions)
        let connected = await connector.connect(endpoints)
        var runners: [String: HostRunner] = [:]
        for ep in endpoints {
            switch connected[ep.name] {
            case .success(let r)?: runners[ep.name] = r
            case .failure(let e)?:
                events(.preflight(host: ep.name, severity: .warning,
                                  message: "\(ErrorText.describe(e, about: ep.name)); it stays in the state"))
            case nil: break
            }
        }

        // The API is reached through the first control plane while it is still there.
        let api = first.flatMap { runners[$0] }
        let apiUp: Bool
        if let api { apiUp = (try? await api.probe(NodeRecipes.nodesJSON, timeout: .seconds(30)).succeeded) ?? false } else { apiUp = false }

        events(.phase("destroy"))
        var jobs: [Job<String>] = []
        var previousCP: String?
        for name in order {
            let role = state.hosts[name]?.role ?? .worker
            var deps: [String] = []
            if role == .controlPlane {
                // Control planes go after every worker, one at a time, the first one last.
                deps = workers.map { "destroy/\($0)" } + (previousCP.map { [$0] } ?? [])
                previousCP = "destroy/\(name)"
            }
            let runner = runners[name]
            let os = state.hosts[name]?.facts.flatMap { NodeOSes.for($0) }
            jobs.append(Job(id: "destroy/\(name)", dependencies: deps, subject: name) { [self] in
                try await self.destroyHost(name, runner: runner, api: apiUp && name != first ? api : nil, os: os)
            })
        }
        let outcomes = await Scheduler.run(jobs, parallelism: options.parallelism, cancellation: options.cancellation)

        var failures: [String] = []
        var rows: [HostSummary] = []
        for name in order {
            let outcome = outcomes["destroy/\(name)"]
            var err: String?
            switch outcome {
            case .failed(let e)?: err = e; failures.append("\(name): \(e)")
            case .skipped(let why)?: err = why; if why != "cancelled" { failures.append("\(name): \(why)") }
            default: break
            }
            rows.append(HostSummary(host: name, stepsDone: outcome == .succeeded ? 1 : 0, stepsPlanned: 1,
                                    result: outcome == .succeeded ? .removed : (outcome.map { if case .failed = $0 { return .failed }; return .skipped } ?? .skipped),
                                    elapsed: clock.now - started, error: err))
        }
        let left = await runState.state.hosts
        if left.isEmpty {
            // Nothing of the cluster is left: forget it (the lineage stays; the backup keeps the old state).
            try await runState.updateWhole {
                let name = $0.cluster.name
                $0.cluster = ClusterRecord(name: name)
                $0.addons = [:]
                $0.manifests = [:]
            }
            if let path = options.kubeconfigPath, FileManager.default.fileExists(atPath: path) {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
        return RunReport(hosts: rows, failures: failures, cancelled: options.cancellation.isCancelled,
                         changed: outcomes.values.contains(.succeeded))
    }

    func destroyHost(_ name: String, runner: HostRunner?, api: HostRunner?, os: (any NodeOS)?) async throws {
        try await StepEvents(events: events, redactor: redactor).run(host: name, step: "destroy") {
            guard let runner else { throw EngineError.unreachable(host: name, reason: "not connected; kept in the state") }
            // The kubeadm procedure: drain, reset, then delete the Node (deleted first, it would be registered
            // again by the kubelet that still runs).
            if let api {
                _ = try await api.probe(NodeRecipes.drain(node: name), timeout: .seconds(180))
            }
            let limits = options.limits
            let seconds = options.purge ? max(limits.join, limits.packages) : limits.join
            try await runner.run(NodeRecipes.reset(os, purge: options.purge, limits: limits),
                                 timeout: .seconds(RemoteGuard.sessionLimit(seconds)))
            if let api {
                _ = try await api.probe(NodeRecipes.deleteNode(name), timeout: .seconds(60))
            }
            try await runState.updateWhole { $0.hosts[name] = nil }
            return true
        }
    }
}
