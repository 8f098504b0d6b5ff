import BootstrapCore
import Foundation

/// What a step needs: its host, the plan, the run's state, and the first control plane's runner for
/// cluster-wide commands.
public struct StepContext: Sendable {
    public let plan: ClusterPlan
    public let host: ClusterPlan.Host
    public let runner: HostRunner
    /// The host's operating system, chosen once from its facts.
    public let os: any NodeOS
    public let cluster: ClusterSession
}

/// What a step did.
public enum StepResult: Sendable, Equatable {
    /// It acted on the host.
    case changed
    /// Its effect was already there (e.g. after a crash between acting and recording); nothing ran.
    case alreadyDone
}

/// One kind of host step: one file each under Steps/. `run` is only called for steps the state does not
/// record as done, and must converge: safe to call again after a failure or a kill at any point.
public protocol HostStep: Sendable {
    var name: StepName { get }
    func run(_ ctx: StepContext) async throws -> StepResult
}

public enum StepKinds {
    public static func step(_ name: StepName) -> any HostStep {
        switch name {
        case .prepare: return PrepareStep()
        case .containerd: return ContainerdStep()
        case .kubernetesRepo: return KubernetesRepoStep()
        case .kubernetesPackages: return KubernetesPackagesStep()
        case .images: return ImagesStep()
        case .initControlPlane: return InitStep()
        case .joinControlPlane: return JoinStep(controlPlane: true)
        case .joinWorker: return JoinStep(controlPlane: false)
        case .nodeConfig: return NodeConfigStep()
        }
    }
}

/// Cluster-wide knowledge and actions shared by the steps of one run: the first control plane's runner, the
/// join secrets (made once, refreshed when expired — judged by the cluster's own clock).
public actor ClusterSession {
    public let plan: ClusterPlan
    public let runState: RunState
    let redactor: Redactor
    var firstControlPlane: HostRunner?
    /// Opens another session to the control plane serving the cluster, saying for what when it cannot
    /// (`watcher()`, `leaseReleaseRunner()`).
    private let openSession: (@Sendable (HostEndpoint, _ purpose: String) async throws -> HostRunner)?
    private var watcherTask: Task<HostRunner, Error>?
    /// At most this many sessions of their own for Helm releases at once (`leaseReleaseRunner()`).
    let releaseSessionLimit: Int
    private var idleReleaseRunners: [HostRunner] = []
    private var releaseSessionsOpen = 0
    /// Set once opening a release's session failed: the releases then share the serving control plane's session.
    private var releaseSessionsFailed = false
    private var releaseWaiters: [CheckedContinuation<HostRunner?, Never>] = []
    /// The other joined control planes, in plan order: cluster-wide commands go through the first one whose API
    /// server answers when the first control plane's does not (chosen once, on first use).
    let otherControlPlanes: [HostRunner]
    private var serving: HostRunner?
    private var tokenTask: Task<Secret, Error>?
    private var secretTasks: [String: Task<Secret, Error>] = [:]
    private var keyTask: Task<Secret, Error>?

    /// Secrets must stay valid at least this long after we decide to use them.
    static let margin: TimeInterval = 10 * 60
    static let tokenLifetime: TimeInterval = 2 * 3600
    static let certificateKeyLifetime: TimeInterval = 2 * 3600

    init(plan: ClusterPlan, runState: RunState, redactor: Redactor, firstControlPlane: HostRunner?,
         otherControlPlanes: [HostRunner] = [],
         releaseSessionLimit: Int = ClusterSession.defaultReleaseSessionLimit,
         openSession: (@Sendable (HostEndpoint, _ purpose: String) async throws -> HostRunner)? = nil) {
        self.plan = plan
        self.runState = runState
        self.redactor = redactor
        self.firstControlPlane = firstControlPlane
        self.otherControlPlanes = otherControlPlanes
        self.releaseSessionLimit = releaseSessionLimit
        self.openSession = openSession
    }

    /// Sessions for Helm releases a run opens at most (fewer with a smaller `--parallelism`).
    public static let defaultReleaseSessionLimit = 4

    /// A second session to the control plane serving the cluster (`controlPlaneRunner()`), to look at the
    /// cluster while a long command holds the first session (a session runs one command at a time): a Helm
    /// release's pods while `helm --wait` runs.
    /// Opened on first use, once for the run (a failure is not retried), closed with the run's sessions.
    func watcher() async throws -> HostRunner {
        if let t = watcherTask { return try await t.value }
        let cp = try await controlPlaneRunner()
        guard let open = openSession else { throw EngineError.refused("no second session to \(cp.name) can be opened") }
        let endpoint = cp.session.endpoint
        let task = Task { try await open(endpoint, "second session for progress") }
        watcherTask = task
        return try await task.value
    }

    /// A session of its own to the control plane serving the cluster (`controlPlaneRunner()`) for one Helm
    /// release, whose `helm --wait` holds it for minutes (a session runs one command at a time): so that releases
    /// install at the same time, and other cluster commands do not queue behind them. An idle one of the run's,
    /// else a new one (the same endpoint and user as the serving control plane's, through `sudo -n` alike) while
    /// fewer than `releaseSessionLimit` are open, else the next one given back. The serving control plane's own
    /// session when none can be opened (said once in its log). Hand it back with `returnReleaseRunner`; all
    /// are closed with the run's sessions.
    func leaseReleaseRunner() async throws -> HostRunner {
        let cp = try await controlPlaneRunner()
        while true {
            if let r = idleReleaseRunners.popLast() { return r }
            guard let open = openSession, !releaseSessionsFailed, releaseSessionLimit > 0 else { return cp }
            if releaseSessionsOpen < releaseSessionLimit {
                releaseSessionsOpen += 1
                do {
                    return try await open(cp.session.endpoint,
                                          "session of its own for a Helm release (releases share the main one)")
                } catch {
                    releaseSessionsOpen -= 1
                    releaseSessionsFailed = true
                    // No waiter is left waiting for a session that will not be opened: they look again.
                    for w in releaseWaiters { w.resume(returning: nil) }
                    releaseWaiters = []
                    return cp
                }
            }
            // All are busy: the next one given back (nil: look again).
            if let r = await withCheckedContinuation({ releaseWaiters.append($0) }) { return r }
        }
    }

    /// Gives back a runner from `leaseReleaseRunner()` for the next release; `usable: false` (its command
    /// failed, the connection may be lost) drops it instead, making room for a new one.
    func returnReleaseRunner(_ r: HostRunner, usable: Bool) {
        if r === serving || r === firstControlPlane || otherControlPlanes.contains(where: { $0 === r }) { return }
        guard usable else {
            releaseSessionsOpen -= 1
            if !releaseWaiters.isEmpty { releaseWaiters.removeFirst().resume(returning: nil) }
            return
        }
        if releaseWaiters.isEmpty {
            idleReleaseRunners.append(r)
        } else {
            releaseWaiters.removeFirst().resume(returning: r)
        }
    }

    /// The control plane kubectl, kubeadm and Helm run on for the cluster: the anchor
    /// (`ClusterPlan.anchorControlPlane(state:)`: the one that ran kubeadm init while it stays) while its API
    /// server answers `/readyz`, else the first other joined control plane that stays whose API server does
    /// (Helm installed there first when it is missing). Chosen once per run.
    public func controlPlaneRunner() async throws -> HostRunner {
        if let r = serving { return r }
        guard let first = firstControlPlane else {
            throw EngineError.refused("the first control plane is not connected")
        }
        var chosen = first
        if !otherControlPlanes.isEmpty, (try? await first.probe(NodeRecipes.apiReady, timeout: .seconds(30)))?.succeeded != true {
            for r in otherControlPlanes {
                if (try? await r.probe(NodeRecipes.apiReady, timeout: .seconds(30)))?.succeeded == true {
                    if await runState.state.cluster.steps[ClusterStepName.helm.rawValue] != nil {
                        let limits = plan.spec.timeouts
                        try await r.run(HelmRecipes.install(limits: limits),
                                        timeout: .seconds(RemoteGuard.sessionLimit(limits.helm)))
                    }
                    chosen = r
                    break
                }
            }
        }
        if let r = serving { return r }  // another task chose while this one probed
        serving = chosen
        return chosen
    }

    /// The cluster's clock (the first control plane's), so expiry decisions match what kubeadm decides.
    func clusterNow() async throws -> Date {
        let r = try await controlPlaneRunner()
        let out = try await r.run(NodeRecipes.remoteTime).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let seconds = TimeInterval(out) else { throw EngineError.invalidOutput(host: r.name, what: "the clock") }
        return Date(timeIntervalSince1970: seconds)
    }

    /// A long-lived secret of the cluster (an add-on password): made once, recorded before first use (once
    /// for releases asking at the same time).
    func storedSecret(_ name: String, make: @escaping @Sendable () -> Secret) async throws -> Secret {
        if let t = secretTasks[name] { return try await t.value }
        let (runState, redactor) = (self.runState, self.redactor)
        let task = Task {
            if let s = await runState.state.cluster.secrets[name]?.value {
                redactor.add(s)
                return s
            }
            let s = make()
            redactor.add(s)
            try await runState.update { $0.cluster.secrets[name] = SecretRecord(value: s) }
            return s
        }
        secretTasks[name] = task
        do {
            return try await task.value
        } catch {
            secretTasks[name] = nil  // not recorded: the next caller tries again
            throw error
        }
    }

    /// Makes the secrets `kubeadm init` uses and records them *before* init runs, so a crash during init
    /// leaves a state that still knows them.
    func secretsForInit() async throws -> (token: Secret, key: Secret) {
        let state = await runState.state
        if let t = state.cluster.secrets["bootstrapToken"]?.value, let k = state.cluster.secrets["certificateKey"]?.value {
            redactor.add(t)
            redactor.add(k)
            return (t, k)
        }
        let token = SecretGenerator.bootstrapToken()
        let key = SecretGenerator.certificateKey()
        redactor.add(token)
        redactor.add(key)
        try await runState.update {
            $0.cluster.secrets["bootstrapToken"] = SecretRecord(value: token)
            $0.cluster.secrets["certificateKey"] = SecretRecord(value: key)
        }
        return (token, key)
    }

    /// Once init finished: the expiry of the secrets by the cluster's clock, and the CA hash.
    func recordInit(on host: String) async throws {
        let r = try await controlPlaneRunner()
        var kv: [String: String] = [:]
        for line in try await r.run(NodeRecipes.clockAndCACertHash).stdoutText.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { kv[parts[0]] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        guard let seconds = kv["now"].flatMap(TimeInterval.init) else {
            throw EngineError.invalidOutput(host: r.name, what: "the clock")
        }
        let now = Date(timeIntervalSince1970: seconds)
        let hash = kv["hash"] ?? ""
        guard hash.count == 64, hash.allSatisfy(\.isHexDigit) else {
            throw EngineError.invalidOutput(host: r.name, what: "the CA certificate hash")
        }
        let plan = self.plan
        try await runState.update {
            $0.cluster.initializedOn = host
            $0.cluster.caCertHash = "sha256:" + hash
            $0.cluster.kubernetesVersion = plan.spec.kubernetes.version
            $0.cluster.endpoint = plan.apiEndpoint
            $0.cluster.podSubnet = plan.spec.network.podSubnet
            $0.cluster.serviceSubnet = plan.spec.network.serviceSubnet
            $0.cluster.cni = plan.spec.network.cni.rawValue
            $0.cluster.secrets["bootstrapToken"]?.expiresAt = now.addingTimeInterval(Self.tokenLifetime)
            $0.cluster.secrets["certificateKey"]?.expiresAt = now.addingTimeInterval(Self.certificateKeyLifetime)
        }
    }

    /// A bootstrap token valid for a while yet; a fresh one is created (once, for all joiners) when needed.
    func joinToken() async throws -> Secret {
        if let t = tokenTask { return try await t.value }
        let task = Task { try await self.freshSecret(name: "bootstrapToken", lifetime: Self.tokenLifetime,
                                                        make: SecretGenerator.bootstrapToken,
                                                        install: { NodeRecipes.createToken($0, ttl: KubeadmConfig.tokenTTL) }) }
        tokenTask = task
        return try await task.value
    }

    /// A certificate key valid for a while yet, for a control-plane join (re-uploads the certificates when
    /// the last key expired).
    func certificateKey() async throws -> Secret {
        if let t = keyTask { return try await t.value }
        let task = Task { try await self.freshSecret(name: "certificateKey", lifetime: Self.certificateKeyLifetime,
                                                        make: SecretGenerator.certificateKey,
                                                        install: NodeRecipes.uploadCerts) }
        keyTask = task
        return try await task.value
    }

    /// Forget the memoised key so the next control-plane join checks its expiry again (joins are serial and
    /// can take long).
    func forgetCertificateKey() { keyTask = nil }

    /// The cluster's clock, and whether the recorded bootstrap token still exists in the cluster (it may have
    /// been deleted, or removed by the token cleaner after clock skew): one round trip.
    func clusterNowAndToken(_ token: Secret) async throws -> (now: Date, present: Bool) {
        let r = try await controlPlaneRunner()
        let id = String(token.revealed.prefix(6))
        let out = try await r.run(NodeRecipes.clockAndToken(id: id)).stdoutText
        var kv: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { kv[parts[0]] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        guard let seconds = kv["now"].flatMap(TimeInterval.init) else {
            throw EngineError.invalidOutput(host: r.name, what: "the clock")
        }
        // `unknown`: the API did not answer the list; the join will tell. Trust the record then.
        return (Date(timeIntervalSince1970: seconds), kv["token"] != "absent")
    }

    private func freshSecret(name: String, lifetime: TimeInterval, make: @Sendable () -> Secret,
                             install: @Sendable (Secret) -> ShellCommand) async throws -> Secret
    {
        let recorded = await runState.state.cluster.secrets[name]
        let now: Date
        var present = true
        if name == "bootstrapToken", let token = recorded?.value {
            (now, present) = try await clusterNowAndToken(token)
        } else {
            now = try await clusterNow()
        }
        if present, let rec = recorded, rec.isValid(at: now, margin: Self.margin) {
            redactor.add(rec.value)
            return rec.value
        }
        let fresh = make()
        redactor.add(fresh)
        try await controlPlaneRunner().run(install(fresh))
        try await runState.update {
            $0.cluster.secrets[name] = SecretRecord(value: fresh, expiresAt: now.addingTimeInterval(lifetime))
        }
        return fresh
    }

    public func caCertHash() async throws -> String {
        guard let h = await runState.state.cluster.caCertHash else {
            throw EngineError.refused("the cluster has no recorded CA hash: has kubeadm init finished?")
        }
        return h
    }
}
