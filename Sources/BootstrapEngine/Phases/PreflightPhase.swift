import BootstrapCore

/// The preflight phase of apply: one report for all hosts (`Preflight.check`); any error stops the run with
/// nothing changed.
extension ApplyEngine {
    func preflightPhase(state: ClusterState, facts: [String: HostFacts], runners: [String: HostRunner]) async throws {
        events(.phase("preflight"))
        let issues = await Preflight.check(plan: plan, state: state, facts: facts, runners: runners,
                                          parallelism: options.parallelism)
        for i in issues { events(.preflight(host: i.host, severity: i.severity, message: i.message)) }
        let errors = issues.filter { $0.severity == .error }
        if !errors.isEmpty { throw EngineError.preflightFailed(count: errors.count) }
    }
}
