import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// `HostEndpoint.resolver`: the one place a host's SSH endpoint is worked out from the plan and `~/.ssh/config`.
@Suite struct EndpointResolverTests {
    static func plan(ssh: ClusterPlan.SSHDefaults = .init()) -> ClusterPlan {
        ClusterPlan(metadata: .init(name: "lab"), spec: .init(
            kubernetes: .init(version: "1.34.1"), ssh: ssh,
            hosts: [
                .init(name: "cp-1", address: "10.0.0.1", role: .controlPlane, port: 2200, user: "admin",
                      keyPath: "~/keys/cp"),
                .init(name: "worker-1", address: "10.0.1.1", role: .worker),
            ]))
    }

    @Test func planHostOverridesWinThenConfigThenDefaults() {
        let config = SSHConfig.parse("""
            Host 10.0.*
              User fromconfig
              Port 2022
              IdentityFile ~/.ssh/config_key
            """)
        let resolve = HostEndpoint.resolver(plan: Self.plan(), config: config, home: "/home/me")
        // What the plan writes for a host wins over the config; the port given by the caller is not used.
        let cp = resolve("cp-1", "10.0.0.1", 22)
        #expect(cp.user == "admin")
        #expect(cp.port == 2200)
        #expect(cp.keyPath == "/home/me/keys/cp")
        #expect(cp.knownHostsPath == "/home/me/.ssh/known_hosts")
        #expect(cp.connectTimeout == .seconds(10))
        // Nothing written for the host or in spec.ssh: the config beats bootstrap's defaults.
        let worker = resolve("worker-1", "10.0.1.1", 22)
        #expect(worker.user == "fromconfig")
        #expect(worker.port == 2022)
        #expect(worker.keyPath == "/home/me/.ssh/config_key")
        #expect(worker.bastion == nil)
    }

    @Test func hostOnlyTheStateKnowsKeepsItsRecordedPort() {
        let resolve = HostEndpoint.resolver(plan: Self.plan(), config: nil, home: "/root")
        let gone = resolve("worker-9", "10.0.1.9", 2222)
        #expect(gone.address == "10.0.1.9")
        #expect(gone.port == 2222)
        #expect(gone.user == "ubuntu")
        // The plan's own port is no override: the config may still set one.
        let config = SSHConfig.parse("Host 10.0.1.9\n  Port 2300\n")
        let viaConfig = HostEndpoint.resolver(plan: Self.plan(), config: config, home: "/root")
        #expect(viaConfig("worker-9", "10.0.1.9", 22).port == 2300)
        // A plan host being replaced is reached at the address asked for, with its own settings.
        let old = resolve("cp-1", "10.0.0.99", 22)
        #expect(old.address == "10.0.0.99")
        #expect(old.port == 2200)
    }

    @Test func bastionFromThePlanSharesKnownHostsAndPolicy() {
        let ssh = ClusterPlan.SSHDefaults(knownHosts: "~/kh", hostKeyPolicy: .acceptNew,
                                          bastion: .init(address: "203.0.113.5", port: 2201, user: "jump",
                                                         keyPath: "~/.ssh/jump"),
                                          connectTimeout: 7, explicit: ["knownHosts", "hostKeyPolicy", "bastion"])
        let resolve = HostEndpoint.resolver(plan: Self.plan(ssh: ssh), config: nil, home: "/h")
        let e = resolve("worker-1", "10.0.1.1", 22)
        let b = e.bastion?.value
        #expect(b?.address == "203.0.113.5")
        #expect(b?.port == 2201)
        #expect(b?.user == "jump")
        #expect(b?.keyPath == "/h/.ssh/jump")
        #expect(b?.knownHostsPath == "/h/kh")
        #expect(b?.hostKeyPolicy == .acceptNew)
        #expect(e.hostKeyPolicy == .acceptNew)
        #expect(e.connectTimeout == .seconds(7))
        #expect(b?.connectTimeout == .seconds(7))
    }
}
