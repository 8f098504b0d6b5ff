import BootstrapCore
import Foundation

extension Refresh {
    /// Reads one host's facts (the one-round-trip facts recipe).
    /// `ec2`: the host was found in EC2; its instance metadata is read too.
    static func facts(of r: HostRunner, ec2: Bool = false, events: @escaping EventSink) async throws -> HostFacts {
        let result = try await r.run(NodeRecipes.facts, timeout: .seconds(60))
        guard var f = NodeRecipes.parseFacts(result.stdoutText) else {
            throw EngineError.invalidOutput(host: r.name, what: "the host facts")
        }
        if ec2 {
            let md = try await r.run(NodeRecipes.instanceMetadata, timeout: .seconds(60))
            f.instance = NodeRecipes.parseInstanceMetadata(md.stdoutText)
        }
        events(.facts(host: r.name, f))
        return f
    }
}

/// The facts phase of apply: every plan host's facts, in parallel; any failure stops the run.
extension ApplyEngine {
    func factsPhase(_ runners: [String: HostRunner]) async throws -> [String: HostFacts] {
        events(.phase("facts"))
        let hosts = plan.spec.hosts.compactMap { runners[$0.name] }
        let ec2 = Set(plan.spec.hosts.filter { $0.instanceId != nil }.map(\.name))
        let events = self.events
        let results = await Parallel.map(hosts, limit: options.parallelism) { r -> Result<HostFacts, Error> in
            do { return .success(try await Refresh.facts(of: r, ec2: ec2.contains(r.name), events: events)) }
            catch { return .failure(error) }
        }
        var out: [String: HostFacts] = [:]
        for (r, result) in zip(hosts, results) { out[r.name] = try result.get() }
        return out
    }
}
