import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

/// Values that used to pass validation: empty addresses, shell metacharacters in versions and RBAC names,
/// defaultDeny under flannel; and a flood of unknown keys, reported in part and quickly.
@Suite struct InputValidationTests {
    @Test func emptyAddressAndNameAreErrors() {
        let r = load(edited(edited("address: 10.0.1.21", "address: \"\""), "name: worker-1", "name: ''"))
        #expect(r.plan == nil)
        #expect(has(r, path: "spec.hosts[1].address", containing: "must not be empty"))
        #expect(has(r, path: "spec.hosts[1].name", containing: "must not be empty"))
        #expect(r.diagnostics.first { $0.path == "spec.hosts[1].address" }?.expected?.contains("IPv4 address") == true)
        let bastion = load(edited("  hosts:", "  ssh:\n    bastion: { address: \"\" }\n  hosts:"))
        #expect(has(bastion, path: "spec.ssh.bastion.address", containing: "must not be empty"))
    }

    @Test(arguments: ["1.7.28; rm -rf /", "1.7.28 && curl x", "$(reboot)", "1.7.28`id`", "1.7 28", "v1.7.28", "'1.7.28'"])
    func containerdVersionWithMetacharacters(version: String) {
        let yaml = basePlanYAML + "\n  containerRuntime:\n    containerd: { version: \"\(version.replacingOccurrences(of: "\"", with: "\\\""))\" }\n"
        let r = load(yaml)
        #expect(r.plan == nil, "\(version)")
        let d = r.diagnostics.first { $0.path == "spec.containerRuntime.containerd.version" }
        #expect(d?.message.contains("is not a package version") == true, "\(r.diagnostics)")
        #expect(d?.expected?.contains("1.7.28-0ubuntu1~22.04.1") == true)
    }

    @Test(arguments: ["1.7.28", "1.7.28-0ubuntu1~22.04.1", "1:1.7.28-1", "1.7.28*", "1.7.28-1.amzn2023.0.1"])
    func goodContainerdVersions(version: String) throws {
        _ = try plan(basePlanYAML + "\n  containerRuntime:\n    containerd: { version: \"\(version)\" }\n")
    }

    @Test(arguments: ["65.1.1; id", "65.1.1 && x", "$(id)", ">=65.0.0", "^65.1", "65.1", "65.1.1 ", ""])
    func chartVersionsMustBePinnedSemVer(version: String) {
        let r = load(basePlanYAML + "\n  addons:\n    monitoring: { enabled: true, version: \"\(version)\" }\n")
        #expect(r.plan == nil, "\(version)")
        #expect(r.diagnostics.contains { $0.path == "spec.addons.monitoring.version" }, "\(r.diagnostics)")
    }

    @Test(arguments: ["65.1.1", "v0.26.1", "1.0.0-rc.1", "1.0.0+build.5", "v3.28.2"])
    func goodChartVersions(version: String) throws {
        _ = try plan(basePlanYAML + "\n  addons:\n    monitoring: { enabled: true, version: \"\(version)\" }\n")
    }

    @Test func rbacNamesWithMetacharactersAreErrors() {
        let yaml = basePlanYAML + """

              namespaces:
                - name: team-a
                  access:
                    - { role: view, users: [alice@example.com, "bob; rm -rf /"], groups: [system:authenticated, "dev$(id)", "a b"] }
            """
        let r = load(yaml)
        #expect(r.plan == nil)
        #expect(has(r, path: "spec.namespaces[0].access[0].users[1]", containing: "\"bob; rm -rf /\" is not a valid user name"))
        #expect(has(r, path: "spec.namespaces[0].access[0].groups[1]", containing: "is not a valid group name"))
        #expect(has(r, path: "spec.namespaces[0].access[0].groups[2]", containing: "is not a valid group name"))
        #expect(!r.diagnostics.contains { $0.path.hasSuffix("users[0]") || $0.path.hasSuffix("groups[0]") })
        #expect(r.diagnostics.first { $0.path.hasSuffix("users[1]") }?.expected?.contains("alice@example.com") == true)
    }

    @Test func defaultDenyUnderFlannelWarnsAndCalicoDoesNot() throws {
        let namespaces = "\n  namespaces:\n    - { name: team-a, defaultDeny: true }\n"
        let flannel = load(basePlanYAML + namespaces)
        #expect(flannel.plan != nil)
        let w = flannel.diagnostics.first { $0.path == "spec.namespaces[0].defaultDeny" }
        #expect(w?.severity == .warning)
        #expect(w?.message.contains("flannel does not enforce NetworkPolicy") == true)
        #expect(w?.expected?.contains("calico") == true)
        let calico = load(edited(basePlanYAML, "cni: flannel", "cni: calico") + namespaces)
        #expect(calico.plan != nil && calico.diagnostics.isEmpty, "\(calico.diagnostics)")
    }

    @Test func aFloodOfUnknownKeysIsReportedInPartAndCounted() {
        // A semantic error early in the file, then 250 unknown keys: the first 100 in document order are
        // reported, the rest counted.
        var yaml = edited("address: 10.0.1.21", "address: \"\"")
        for i in 0..<250 { yaml += "\n  unknownKey\(i): x" }
        let r = load(yaml)
        #expect(r.plan == nil)
        #expect(r.diagnostics.count == PlanLoader.reportLimit)
        #expect(r.diagnostics.first?.path == "spec.hosts[1].address")
        #expect(r.diagnostics.last?.path == "spec.unknownKey98")
        #expect(r.omittedErrors == 151 && r.omittedWarnings == 0)
        let text = r.rendered(file: "plan.yaml")
        #expect(text.contains("\n… and 151 more (151 errors, 0 warnings) not shown: the first 100 are\n251 errors, 0 warnings"))
        #expect(text.split(separator: "\n").count == 102)
        // Fewer than the limit: everything, no count.
        let few = load(basePlanYAML + "\n  unknownKey: x\n")
        #expect(few.diagnostics.count == 1 && few.omittedErrors == 0)
        #expect(!few.rendered(file: "p").contains("more"))
    }

    @Test func editDistanceStillSuggests() {
        #expect(editDistance("controlPlaneEndpont", "controlPlaneEndpoint") == 1)
        #expect(didYouMean("Hosts", among: ["hosts", "ssh"]) == "hosts")
    }
}
