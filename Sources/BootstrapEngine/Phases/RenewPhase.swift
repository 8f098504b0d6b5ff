import BootstrapCore
import Foundation

/// A control plane's certificate renewal (`ActionID.renewCertificates`): `kubeadm certs renew all` and the
/// restart of its static pods (`Certificates.renew`), then the new expiry read back and recorded in the host's
/// facts, so that the next plan sees them renewed and a re-run does not renew again.
extension ApplyEngine {
    /// `address`: where the host itself reaches its API server (its cluster address, not the SSH one).
    func renewCertificates(_ name: String, runner: HostRunner, address: String) async throws {
        try await stepEvents.run(host: name, step: ActionID.renewCertificates(host: name).stepLabel) {
            let limits = plan.spec.timeouts
            try await runner.run(Certificates.renew(address: address, limits: limits),
                                 timeout: .seconds(RemoteGuard.sessionLimit(limits.join)))
            let result = try await runner.run(Certificates.read, timeout: .seconds(120))
            guard let expiry = Certificates.parse(result.stdoutText) else {
                throw EngineError.invalidOutput(host: name, what: "the certificate expiry after the renewal")
            }
            try await runState.update { $0.hosts[name]?.facts?.certificates = expiry }
            return true
        }
    }
}

extension ApplyEngine {
    /// After the steps: the certificate expiry of control planes that became control planes in this run (their
    /// facts were read before `kubeadm init` or `join`), so that `show` has it without waiting for the next
    /// refresh. Read-only and best effort: a host that does not answer keeps no expiry until the next refresh.
    func recordNewCertificates(runners: [String: HostRunner]) async {
        guard !options.cancellation.isCancelled else { return }
        let state = await runState.state
        let missing = plan.controlPlanes.compactMap { host -> HostRunner? in
            guard let rec = state.hosts[host.name], rec.facts != nil, rec.facts?.certificates == nil,
                  rec.steps[StepName.initControlPlane.rawValue] != nil
                    || rec.steps[StepName.joinControlPlane.rawValue] != nil else { return nil }
            return runners[host.name]
        }
        let results = await Parallel.map(missing, limit: options.parallelism) { r -> CertificateExpiry? in
            guard let out = try? await r.probe(Certificates.read, timeout: .seconds(120)), out.succeeded else { return nil }
            return Certificates.parse(out.stdoutText)
        }
        let found = Dictionary(uniqueKeysWithValues: zip(missing.map(\.name), results).compactMap { name, c in
            c.map { (name, $0) }
        })
        guard !found.isEmpty else { return }
        try? await runState.update { s in for (name, c) in found { s.hosts[name]?.facts?.certificates = c } }
    }
}
