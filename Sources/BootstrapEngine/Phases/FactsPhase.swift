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
