import BootstrapCore
import Foundation

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
        await connect(endpoints) { _ in () }.mapValues { $0.map(\.runner) }
    }

    /// Connects to each host and runs `then` on it as soon as it is connected, each host on its own: one
    /// slow connection holds back only its own host's work, not every host's (no barrier between the two).
    func connect<T: Sendable>(_ endpoints: [HostEndpoint], then: @escaping @Sendable (HostRunner) async -> T) async
        -> [String: Result<(runner: HostRunner, then: T), EngineError>]
    {
        let transport = self.transport
        let events = self.events
        let redactor = self.redactor
        let sessions = self.sessions
        let results = await Parallel.map(endpoints, limit: parallelism) { ep -> Result<(runner: HostRunner, then: T), EngineError> in
            let clock = ContinuousClock()
            let t0 = clock.now
            let runner: HostRunner
            do {
                let session = try await transport.connect(ep)
                sessions.add(session)
                events(.connected(host: ep.name, elapsed: clock.now - t0))
                runner = HostRunner(name: ep.name, session: session, events: events, redactor: redactor)
            } catch let e as EngineError {
                return .failure(e)
            } catch {
                return .failure(.unreachable(host: ep.name, reason: ErrorText.describe(error, about: ep.name)))
            }
            return .success((runner, await then(runner)))
        }
        return Dictionary(zip(endpoints.map(\.name), results), uniquingKeysWith: { a, _ in a })
    }
}

/// The connect phase of apply, with the facts: every plan host must answer before anything changes; each
/// host's facts are read as soon as it is connected (read-only, so they need not wait for the other hosts);
/// the old machines of hosts to remove are connected when they answer (their reset fails otherwise, and they
/// stay recorded).
extension ApplyEngine {
    func connectPhase(_ removals: [String], state: ClusterState, sessions: SessionRegistry) async throws
        -> (runners: [String: HostRunner], old: [String: HostRunner], facts: [String: HostFacts])
    {
        events(.phase("connect"))
        let endpoints = plan.spec.hosts.map { h in resolve(h.name, h.address, plan.ssh(for: h).port) }
        let oldEndpoints = removals.compactMap { name in state.hosts[name].map { resolve(name, $0.address, $0.port) } }
        let connector = Connector(transport: transport, events: events, redactor: redactor,
                                  parallelism: options.parallelism, sessions: sessions)
        let ec2 = Set(plan.spec.hosts.filter { $0.instanceId != nil }.map(\.name))
        let events = self.events
        async let connectedOld = connector.connect(oldEndpoints)
        let connected = await connector.connect(endpoints) { r -> Result<HostFacts, Error> in
            do { return .success(try await Refresh.facts(of: r, ec2: ec2.contains(r.name), events: events)) }
            catch { return .failure(error) }
        }
        var runners: [String: HostRunner] = [:]
        var oldRunners: [String: HostRunner] = [:]
        var facts: [String: HostFacts] = [:]
        var factsFailure: Error?
        var problems = 0
        for ep in endpoints {
            switch connected[ep.name] {
            case .success(let r)?:
                runners[ep.name] = r.runner
                switch r.then {
                case .success(let f): facts[ep.name] = f
                case .failure(let e): factsFailure = factsFailure ?? e
                }
            case .failure(let e)?:
                events(.preflight(host: ep.name, severity: .error, message: ErrorText.describe(e, about: ep.name)))
                problems += 1
            case nil: break
            }
        }
        for ep in oldEndpoints {
            switch await connectedOld[ep.name] {
            case .success(let r)?: oldRunners[ep.name] = r
            case .failure(let e)?:
                events(.preflight(host: ep.name, severity: .warning,
                                  message: "\(ErrorText.describe(e, about: ep.name)); its reset will fail and it stays in the state"))
            case nil: break
            }
        }
        if problems > 0 { throw EngineError.preflightFailed(count: problems) }
        if let factsFailure { throw factsFailure }
        return (runners, oldRunners, facts)
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

