import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

@Suite struct CertificatesTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// A 3-control-plane plan, applied, whose control planes report certificates expiring in `days` (by host).
    static func cluster(days: [String: Double], ca: Double = 3000, renewBefore: String? = nil) throws
        -> (ClusterPlan, ClusterState)
    {
        var yaml = basePlanYAML.replacingOccurrences(of: "version: \"1.34.1\"",
                                                     with: "version: \"1.34.1\"\n    controlPlaneEndpoint: api.demo:6443")
            .replacingOccurrences(of: """
                - name: worker-1
            """, with: """
                - name: cp-2
                  address: 10.0.1.11
                  role: control-plane
                - name: cp-3
                  address: 10.0.1.12
                  role: control-plane
                - name: worker-1
            """)
        if let renewBefore { yaml += "\n  certificates:\n    renewBefore: \(renewBefore)\n" }
        let p = try plan(yaml)
        var s = appliedState(p)
        for (host, d) in days {
            let expires = now.addingTimeInterval(d * 86400)
            s.hosts[host]?.facts = HostFacts(
                hostname: host, osID: "ubuntu", osVersion: "24.04", architecture: "amd64", cpus: 2, memoryMB: 2048,
                swapOn: false, machineID: "m-\(host)", productUUID: "",
                certificates: CertificateExpiry(checkedAt: now,
                                                certificates: ["apiserver": expires, "admin.conf": expires.addingTimeInterval(60)],
                                                authorities: ["ca": now.addingTimeInterval(ca * 86400)]))
        }
        return (p, s)
    }

    @Test func durations() {
        #expect(Certificates.seconds("30d") == 30 * 86400)
        #expect(Certificates.seconds("720h") == 720 * 3600)
        #expect(Certificates.seconds("90m") == 5400)
        for bad in ["", "30", "d", "-3d", "3.5d", "30 days", "3w", "１d"] { #expect(Certificates.seconds(bad) == nil, "\(bad)") }
    }

    @Test func renewBeforeIsValidatedWithItsPathAndLine() throws {
        let p = try plan(basePlanYAML)
        #expect(p.spec.certificates.renewBefore == "30d")
        #expect(PlanYAML.text(p).contains("certificates:\n    renewBefore: 30d\n"))
        #expect(try plan(basePlanYAML + "\n  certificates: { renewBefore: 45d }\n").spec.certificates.renewBefore == "45d")
        let bad = load(basePlanYAML + "\n  certificates:\n    renewBefore: soon\n")
        #expect(has(bad, path: "spec.certificates.renewBefore", containing: "\"soon\" is not a duration"))
        #expect(errors(bad).first?.line == 18)
        #expect(errors(bad).first?.expected?.contains("30d, 720h or 90m") == true)
        let long = load(basePlanYAML + "\n  certificates: { renewBefore: 400d }\n")
        #expect(has(long, path: "spec.certificates.renewBefore", containing: "400d is out of range"))
        #expect(has(load(basePlanYAML + "\n  certificates: { renewAfter: 3d }\n"), path: "spec.certificates.renewAfter",
                    containing: "unknown field"))
    }

    @Test func factsParseCheckExpirationLines() throws {
        let text = """
            os.id=ubuntu
            certs.now=1800000000
            certs.cert.admin.conf=Jan 15, 2027 08:00
            certs.cert.apiserver=Jan 15, 2027 07:59
            certs.ca.ca=Jan 13, 2036 07:59
            certs.ca.front-proxy-ca=Jan 13, 2036 07:59
            """
        let f = try #require(NodeRecipes.parseFacts(text)?.certificates)
        #expect(f.checkedAt == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(f.certificates.keys.sorted() == ["admin.conf", "apiserver"])
        #expect(f.earliest?.name == "apiserver")
        #expect(Certificates.format(f.earliest!.expires) == "2027-01-15 07:59 UTC")
        #expect(f.earliestAuthority?.name == "ca")
        #expect(Certificates.parse(text) == f)
        // A worker reports none.
        #expect(NodeRecipes.parseFacts("os.id=ubuntu\n")?.certificates == nil)
        // The facts recipe asks only control planes, and reads the text table.
        #expect(NodeRecipes.facts.script.contains("kubeadm certs check-expiration"))
        #expect(NodeRecipes.facts.script.contains("[ -f /etc/kubernetes/pki/apiserver.crt ]"))
    }

    @Test func withinRenewBeforeEachControlPlaneIsRenewedOneAtATime() throws {
        let (p, s) = try Self.cluster(days: ["cp-1": 12.5, "cp-2": 200, "cp-3": 29])
        let a = ApplyPlan.make(plan: p, state: s)
        #expect(a.blockers.isEmpty)
        let reasons = a.changes.changes.filter { $0.subject == .host }.map { "\($0.name): \($0.reasons.joined())" }
        #expect(reasons == ["cp-1: renew certificates (expire in 12 days)", "cp-3: renew certificates (expire in 29 days)"])
        #expect(a.changes.summary.change == 2)
        let renew1 = ActionID.renewCertificates(host: "cp-1"), renew3 = ActionID.renewCertificates(host: "cp-3")
        let byID = Dictionary(uniqueKeysWithValues: a.actions.map { ($0.id, $0) })
        #expect(byID[renew1]?.after == [])
        #expect(byID[renew3]?.after == [renew1])
        #expect(byID[.clusterStep(.kubeconfig)]?.after == [renew1, renew3])
        #expect(byID[.waitReady]?.after.contains(.clusterStep(.kubeconfig)) == true)
        #expect(renew1.description == "cp-1/renew-certificates" && renew1.host == "cp-1")
        // Outside the window, nothing; a wider window takes cp-2 too.
        #expect(ApplyPlan.make(plan: p, state: try Self.cluster(days: ["cp-1": 31]).1).actions
            .filter { $0.id != .waitReady }.isEmpty)
        let (wide, ws) = try Self.cluster(days: ["cp-1": 12, "cp-2": 200, "cp-3": 29], renewBefore: "210d")
        #expect(ApplyPlan.make(plan: wide, state: ws).actions.filter { $0.id.stepLabel == "renew-certificates" }.count == 3)
    }

    @Test func hostsOtherActionsRenewAreSkipped() throws {
        let (p, s) = try Self.cluster(days: ["cp-1": 5, "cp-2": 5])
        #expect(Certificates.renewals(plan: p, state: s).map(\.host) == ["cp-1", "cp-2"])
        #expect(Certificates.renewals(plan: p, state: s, skipping: ["cp-1"]).map(\.host) == ["cp-2"])
        #expect(Certificates.renewedByOtherActions([PlannedAction(id: .waitReady)]).isEmpty)
    }

    @Test func expiredCertificatesAreAnErrorWithTheWayOut() throws {
        let (p, s) = try Self.cluster(days: ["cp-1": -2, "cp-2": 100])
        let a = ApplyPlan.make(plan: p, state: s)
        #expect(a.blockers.count == 1)
        let b = try #require(a.blockers.first)
        #expect(b.path == "hosts.cp-1.certificates")
        #expect(b.reason.contains("certificates on cp-1 expired on"))
        #expect(b.reason.contains("`sudo kubeadm certs renew all`"))
        #expect(b.reason.contains("/etc/kubernetes/manifests"))
        #expect(!a.actions.contains { $0.id.stepLabel == "renew-certificates" })
        // An expired CA cannot be renewed by kubeadm: the message says so.
        let (_, old) = try Self.cluster(days: ["cp-1": -2], ca: -1)
        let ca = try #require(ApplyPlan.make(plan: p, state: old).refusal)
        #expect(ca.contains("the certificate authority ca on cp-1 expired") && ca.contains("Manual rotation of CA certificates"))
    }

    @Test func anAdminCertificateRenewedElsewhereFetchesTheKubeconfigAgain() throws {
        let (p, s) = try Self.cluster(days: ["cp-1": 100])
        var renewed = s
        renewed.hosts["cp-1"]?.facts?.certificates?.certificates["admin.conf"] = Self.now.addingTimeInterval(365 * 86400)
        #expect(Certificates.adminRenewed(recorded: s, refreshed: renewed))
        #expect(!Certificates.adminRenewed(recorded: s, refreshed: s))
        #expect(!Certificates.adminRenewed(recorded: nil, refreshed: renewed))
        let a = ApplyPlan.make(plan: p, state: renewed, kubeconfigStale: true)
        #expect(a.actions.map(\.id).contains(.clusterStep(.kubeconfig)))
        #expect(a.changes.changes.first?.reasons == ["kubeconfig: the admin certificate on cp-1 was renewed since it was fetched; it is fetched again"])
        #expect(ApplyPlan.make(plan: p, state: renewed).actions.filter { $0.id != .waitReady }.isEmpty)
    }

    @Test func theRenewalRecipeRestartsTheStaticPodsUnderTheKubeadmLock() {
        let script = Certificates.renew(address: "10.0.1.10").script
        #expect(script.contains("kubeadm certs renew all"))
        #expect(script.contains("/var/lib/bootstrap/kubeadm.lock"))
        #expect(script.contains("https://10.0.1.10:6443/livez"))
        let renew = script.range(of: "renew all")!.lowerBound, out = script.range(of: "mv /etc/kubernetes/manifests/*.yaml")!.lowerBound
        #expect(renew < out)
        let summary = CertificateExpiry(checkedAt: Self.now, certificates: ["apiserver": Self.now.addingTimeInterval(12.5 * 86400)],
                                        authorities: ["ca": Self.now.addingTimeInterval(3000 * 86400)]).summary
        #expect(summary.contains("(in 12 days, apiserver first), CA ca"))
    }
}
