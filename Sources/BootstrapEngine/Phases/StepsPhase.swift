import BootstrapCore
import Foundation

/// The steps phase: the plan's actions as jobs of the step graph, host and cluster steps.
extension ApplyEngine {
    /// Runs the plan's actions as one step graph (`Scheduler`): each after the actions it waits for, at most
    /// `parallelism` at once; a failure skips what depends on it, and each skip is reported.
    func stepsPhase(_ applyPlan: ApplyPlan, facts: [String: HostFacts], runners: [String: HostRunner],
                    oldRunners: [String: HostRunner], sessions: SessionRegistry) async throws -> [ActionID: JobOutcome]
    {
        events(.phase("apply"))
        let state = await runState.state
        // The control plane that anchors the cluster (Core decides: the init host while it stays, else the
        // first control plane that stays).
        let firstName = plan.anchorControlPlane(state: state)?.name
        // Once the cluster runs, any other joined control plane that stays can serve it when the anchor's API
        // does not.
        let leaving = Set(applyPlan.removals)
        let others = state.cluster.initializedOn == nil ? [] : plan.spec.hosts.filter {
            $0.role == .controlPlane && $0.name != firstName && !leaving.contains($0.name)
                && state.hosts[$0.name]?.steps[StepName.joinControlPlane.rawValue] != nil
        }.compactMap { runners[$0.name] }
        let (transport, events, redactor) = (self.transport, self.events, self.redactor)
        let cluster = ClusterSession(plan: plan, runState: runState, redactor: redactor,
                                     firstControlPlane: firstName.flatMap { runners[$0] }, otherControlPlanes: others,
                                     releaseSessionLimit: min(ClusterSession.defaultReleaseSessionLimit,
                                                              max(1, options.parallelism)),
                                     openSession: { endpoint, purpose in
                                         let session: any HostSession
                                         do {
                                             session = try await transport.connect(endpoint)
                                         } catch {
                                             let why = ErrorText.describe(error, about: endpoint.name)
                                             events(.output(host: endpoint.name, stream: .stderr,
                                                            line: "no \(purpose): \(why)"))
                                             throw error
                                         }
                                         sessions.add(session)
                                         return HostRunner(name: endpoint.name, session: session, events: events,
                                                           redactor: redactor)
                                     })
        var jobs: [Job<ActionID>] = []
        for action in applyPlan.actions {
            let work = try work(for: action, state: state, facts: facts, runners: runners, oldRunners: oldRunners,
                                cluster: cluster)
            let subject: String? = switch action.id {
            case .hostStep(let h, _), .removal(let h), .renewCertificates(let h), .upgrade(let h): h
            default: nil
            }
            jobs.append(Job(id: action.id, dependencies: action.after, subject: subject, work: work))
        }
        let outcomes = await Scheduler.run(jobs, parallelism: options.parallelism, cancellation: options.cancellation)
        for job in jobs {
            guard case .skipped(let why)? = outcomes[job.id], why != "cancelled" else { continue }
            // Cluster-wide work is told on the first control plane, where it runs.
            events(.stepSkipped(host: job.subject ?? firstName ?? plan.name, step: job.id.stepLabel, reason: why))
        }
        return outcomes
    }

    /// What running `action` means. A plan host without facts or with an unknown OS never gets here
    /// (preflight refuses it).
    func work(for action: PlannedAction, state: ClusterState, facts: [String: HostFacts],
              runners: [String: HostRunner], oldRunners: [String: HostRunner], cluster: ClusterSession) throws
        -> @Sendable () async throws -> Void
    {
        switch action.id {
        case .removal(let name):
            let runner = oldRunners[name]
            let replacement = hostsByName[name].map { h in
                var rec = HostRecord(address: h.address, port: plan.ssh(for: h).port, role: h.role, facts: facts[name],
                                     privateAddress: h.recordedClusterAddress, instanceId: h.instanceId)
                rec.publicAddress = h.publicAddress
                return rec
            }
            return { [self] in
                try await self.removeHost(name, runner: runner, replacement: replacement, cluster: cluster)
            }
        case .hostStep(let name, let step):
            guard let host = hostsByName[name], let runner = runners[name],
                  let os = facts[name].flatMap({ NodeOSes.for($0) }) else {
                throw EngineError.refused("\(action.id): \(name) is not a connected plan host with a known OS")
            }
            let ctx = StepContext(plan: plan, host: host, runner: runner, os: os, cluster: cluster)
            let hash = action.inputHash ?? ""
            return { [self] in try await self.runStep(StepKinds.step(step), ctx: ctx, inputHash: hash) }
        case .clusterStep(let name):
            let hash = action.inputHash ?? ""
            return { [self] in try await self.runClusterStep(name, inputHash: hash, cluster: cluster) }
        case .release(let key):
            guard let release = Releases.desired(for: plan).first(where: { $0.key == key }) else {
                throw EngineError.refused("\(action.id): the plan has no release \(key)")
            }
            return { [self] in try await self.install(release, cluster: cluster) }
        case .uninstall(let key):
            guard let record = state.addons[key] else {
                throw EngineError.refused("\(action.id): the state records no release \(key)")
            }
            return { [self] in try await self.uninstall(key, record, cluster: cluster) }
        case .objects:
            let keys = Set(objects.map(\.key))
            let prune = state.manifests.filter { !keys.contains($0.key) }.sorted { $0.key < $1.key }
                .map { (key: $0.key, record: $0.value) }
            let objects = self.objects
            return { [self] in try await self.applyObjects(objects, prune: prune, cluster: cluster) }
        case .waitReady:
            return { [self] in try await self.waitReady(cluster: cluster) }
        case .renewCertificates(let name):
            guard let host = hostsByName[name], let runner = runners[name] else {
                throw EngineError.refused("\(action.id): \(name) is not a connected plan host")
            }
            return { [self] in try await self.renewCertificates(name, runner: runner, address: host.clusterAddress) }
        case .upgradeCluster:
            return { [self] in try await self.startUpgrade(cluster: cluster) }
        case .upgrade(let name):
            guard let host = hostsByName[name], let runner = runners[name],
                  let os = facts[name].flatMap({ NodeOSes.for($0) }) else {
                throw EngineError.refused("\(action.id): \(name) is not a connected plan host with a known OS")
            }
            let ctx = StepContext(plan: plan, host: host, runner: runner, os: os, cluster: cluster)
            return { [self] in try await self.upgradeNode(ctx, cluster: cluster) }
        }
    }

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
        try await stepEvents.run(host: ctx.host.name, step: step.name.rawValue) {
            let result = try await step.run(ctx)
            try await runState.recordStep(host: ctx.host.name, step: step.name, inputHash: inputHash)
            return result == .changed
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

