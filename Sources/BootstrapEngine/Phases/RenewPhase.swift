import BootstrapCore
import Foundation

/// A control plane's certificate renewal (`ActionID.renewCertificates`): `kubeadm certs renew all` and the
/// restart of its static pods (`Certificates.renew`), then the new expiry read back and recorded in the host's
/// facts, so that the next plan sees them renewed and a re-run does not renew again.
extension ApplyEngine {
    func renewCertificates(_ name: String, runner: HostRunner, address: String) async throws {
        try await stepEvents.run(host: name, step: ActionID.renewCertificates(host: name).stepLabel) {
            let limits = plan.spec.timeouts
            try await runner.run(Certificates.renew(address: address, limits: limits),
                                 timeout: .seconds(RemoteGuard.sessionLimit(limits.join)))
            let result = try await runner.run(Certificates.read, timeout: .seconds(120))
            guard let expiry = NodeRecipes.parseFacts("os.id=-\n" + result.stdoutText)?.certificates else {
                throw EngineError.invalidOutput(host: name, what: "the certificate expiry after the renewal")
            }
            try await runState.update { $0.hosts[name]?.facts?.certificates = expiry }
            return true
        }
    }
}
