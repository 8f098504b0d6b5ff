import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// Hosts of different OSes in one cluster: each gets its own package manager's recipes, chosen from its facts.
/// In `ApplyEngineTests` (serialized) because the fake cluster is shared.
extension ApplyEngineTests {
    @Test func eachHostGetsTheRecipesOfItsOwnOS() async throws {
        let plan = Self.plan(workers: 3)
        let rig = Rig(plan: plan)
        let oses: [String: FakeHost.OS] = ["cp-1": .ubuntu2404, "worker-1": .amazonLinux2023,
                                           "worker-2": .debian12, "worker-3": .ubuntu2204]
        for (name, os) in oses { rig.hosts[name]!.os = os }
        #expect(Set(oses.values) == Set(FakeHost.OS.all))
        let (report, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(report.succeeded, "\(report.failures)\n\(rig.log.text)")
        #expect(rig.hosts["worker-1"]!.joins == 1)

        let amazon = rig.hosts["worker-1"]!.commands.joined(separator: "\n")
        #expect(amazon.contains("> /etc/yum.repos.d/kubernetes.repo"))
        // One transaction: containerd (unless installed) with the Kubernetes packages.
        #expect(amazon.contains("set -- kubelet-1.34.1 kubeadm-1.34.1 kubectl-1.34.1"))
        #expect(amazon.contains("then set -- containerd \"$@\"; fi"))
        #expect(amazon.contains("dnf --setopt=exit_on_lock=True install -y -q --disableexcludes=kubernetes \"$@\""))
        for name in ["cp-1", "worker-2", "worker-3"] {
            let text = rig.hosts[name]!.commands.joined(separator: "\n")
            #expect(text.contains("kubelet=1.34.1-1.1 kubeadm=1.34.1-1.1 kubectl=1.34.1-1.1"), "\(name)")
            #expect(!text.contains("dnf "), "\(name)")
        }
        // The recorded facts say which OS each host runs.
        #expect(state.hosts["worker-1"]?.facts?.osID == "amzn" && state.hosts["worker-2"]?.facts?.osID == "debian")

        // Again: the refresh reads each OS's package versions as installed at the plan's version, so nothing runs.
        let before = rig.log.stepsRun.count
        let (again, refreshed) = try await rig.apply(plan, state: state)
        #expect(again.succeeded && !again.changed, "\(rig.log.text)")
        #expect(refreshed.hosts["worker-1"]?.facts?.packages["kubeadm"] == "1.34.1")
        #expect(refreshed.hosts["worker-2"]?.facts?.packages["kubeadm"] == "1.34.1-1.1")
        #expect(rig.log.stepsRun.count == before)

        // Destroy --purge removes each host's packages with its own package manager, and its repository file.
        let store = MemoryStore()
        let run = RunState(state: state, store: store)
        let destroy = DestroyEngine(
            runState: run, transport: FakeTransport(hosts: rig.hosts),
            resolve: { n, a, p in HostEndpoint(name: n, address: a, port: p, user: "root", knownHostsPath: "/dev/null") },
            options: DestroyOptions(purge: true), events: rig.log.sink)
        let gone = try await destroy.run()
        #expect(gone.failures.isEmpty, "\(gone.failures)")
        #expect(await run.state.hosts.isEmpty)
        let purge = try #require(rig.hosts["worker-1"]!.commands.last { $0.contains("kubeadm reset") })
        #expect(purge.contains("dnf --setopt=exit_on_lock=True remove -y -q kubelet kubeadm kubectl"))
        #expect(purge.contains("rm -f /etc/yum.repos.d/kubernetes.repo") && !purge.contains("apt"))
        let debian = try #require(rig.hosts["worker-2"]!.commands.last { $0.contains("kubeadm reset") })
        #expect(debian.contains("purge -y -q kubelet kubeadm kubectl"))
        #expect(debian.contains("rm -f /etc/apt/sources.list.d/kubernetes.list /etc/apt/keyrings/kubernetes-apt-keyring.gpg"))
    }

    /// An OS release bootstrap does not support is refused before anything changes.
    @Test func anUnsupportedReleaseIsRefusedByPreflight() async throws {
        let plan = Self.plan(workers: 1)
        let rig = Rig(plan: plan)
        rig.hosts["worker-1"]!.os = .init(id: "amzn", version: "2", packageManager: "dnf")
        await #expect(throws: EngineError.self) {
            _ = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        }
        for host in rig.hosts.values {
            // the facts, the preflight probe, the package repository's releases (read-only)
            #expect(host.commands.allSatisfy { $0.contains("/etc/os-release") || $0.hasPrefix("true") || $0.contains("madison") },
                    "\(host.commands)")
        }
        #expect(rig.log.text.contains("unsupported OS amzn 2 (supported: Ubuntu 22.04/24.04, Debian 12, Amazon Linux 2023)"),
                "\(rig.log.text)")
    }
}
