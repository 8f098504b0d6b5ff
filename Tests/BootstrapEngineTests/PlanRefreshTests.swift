import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

// Nested in ApplyEngineTests: both use the fake cluster (a global), so they must not run at the same time.
extension ApplyEngineTests {
    /// `plan --refresh`: facts over the (fake) transport, drift as changes, nothing changed or written.
    @Suite struct PlanRefreshTests {
        typealias Rig = ApplyEngineTests.Rig

        static func applied(workers: Int = 2) async throws -> (ClusterPlan, Rig, ClusterState) {
            let plan = ApplyEngineTests.plan(workers: workers)
            let rig = Rig(plan: plan)
            let (report, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
            #expect(report.succeeded, "\(report.failures)")
            return (plan, rig, state)
        }

        static func refresh(_ plan: ClusterPlan, _ rig: Rig, _ state: ClusterState, unreachable: Set<String> = [],
                            log: EventLog = EventLog()) async -> PlanRefresh.Result
        {
            await PlanRefresh(plan: plan, transport: FakeTransport(hosts: rig.hosts, unreachable: unreachable),
                              resolve: { n, a, p in HostEndpoint(name: n, address: a, port: p, user: "root", knownHostsPath: "/dev/null") },
                              parallelism: 4, events: log.sink).run(state: state)
        }

        /// Only the facts command runs, every session is closed, and the state comes back as it was.
        @Test func noDriftMeansNoChangesAndOnlyTheFactsCommand() async throws {
            let (plan, rig, state) = try await Self.applied()
            let before = rig.hosts.mapValues { $0.commands.count }
            let writes = rig.store.writes.count
            let result = await Self.refresh(plan, rig, state)
            #expect(result.failures.isEmpty && result.drift.isEmpty)
            #expect(Set(result.refreshed) == ["cp-1", "worker-1", "worker-2"])
            #expect(ChangeSet.diff(plan: plan, state: result.state).changes.isEmpty)
            #expect(result.state.hosts.mapValues(\.stableProjection) == state.hosts.mapValues(\.stableProjection))
            #expect(result.state.serial == state.serial)
            for (name, host) in rig.hosts {
                let new = host.commands.dropFirst(before[name]!)
                #expect(new.count == 1 && new.allSatisfy { $0.contains("/etc/os-release") }, "\(name): \(Array(new))")
                #expect(host.closed >= 2, "\(name): the refresh's session was not closed")
            }
            #expect(rig.store.writes.count == writes, "plan --refresh wrote the state")
        }

        /// A node upgraded by hand (its kubelet at another minor than the cluster's): drift in the refresh, with
        /// the skew policy's reason; apply points the host at the plan's repository again, installs the plan's
        /// version and restarts the kubelet.
        @Test func aKubeletUpgradedByHandIsDriftAndApplyPutsItBack() async throws {
            let (plan, rig, state) = try await Self.applied()
            #expect(state.cluster.kubernetesVersion == "1.34.1")
            rig.hosts["worker-1"]!.lock.withLock { rig.hosts["worker-1"]!.kubeletByHand = "1.35.5-1.1" }
            let result = await Self.refresh(plan, rig, state)
            #expect(result.drift.map(\.host) == ["worker-1"], "\(result.drift)")
            let d = try #require(result.drift.first)
            #expect(d.message == "the kubelet is 1.35.5, newer than the API server (1.34.1), which the version skew policy never allows: it cannot register (kubelet 1.35.5-1.1, kubeadm 1.34.1-1.1, kubectl 1.34.1-1.1); they will be installed at 1.34.1 again and the kubelet restarted",
                    "\(d.message)")
            #expect(d.steps == ["kubernetes-repo", "kubernetes-packages"])
            #expect(result.state.hosts["worker-1"]?.steps["kubernetes-repo"] == nil)
            #expect(result.state.hosts["worker-2"]?.steps["kubernetes-repo"] != nil)
            // plan shows it as a change of worker-1 with the drift as its reason
            var changes = ChangeSet.diff(plan: plan, state: result.state)
            changes.explain(result.drift)
            let row = try #require(changes.changes.first { $0.name == "worker-1" })
            #expect(row.reasons.first?.hasPrefix("drift: the kubelet is 1.35.5") == true, "\(row.reasons)")

            // apply: the repository, the packages at 1.34.1, the kubelet restarted; the other hosts untouched
            let before = rig.hosts.mapValues { $0.commands.count }
            let (report, after) = try await rig.apply(plan, state: state)
            #expect(report.succeeded, "\(report.failures)")
            let ran = Array(rig.hosts["worker-1"]!.commands.dropFirst(before["worker-1"]!))
            let repo = try #require(ran.firstIndex { $0.contains("/etc/apt/sources.list.d/kubernetes.list") && $0.contains("v1.34") })
            let install = try #require(ran.firstIndex { $0.contains("kubelet=1.34.1-1.1") })
            #expect(repo < install)
            // The kubelet restarted after the install, in the same script (no round trip of its own).
            let script = ran[install]
            let restart = try #require(script.range(of: "systemctl restart kubelet"))
            #expect(script.range(of: "kubelet=1.34.1-1.1")!.upperBound < restart.lowerBound)
            #expect(rig.hosts["worker-1"]!.lock.withLock { rig.hosts["worker-1"]!.kubeletByHand } == nil)
            #expect(after.hosts["worker-1"]?.steps["kubernetes-packages"] != nil)
            #expect(!rig.hosts["worker-2"]!.commands.dropFirst(before["worker-2"]!).contains { $0.contains(" install ") })
        }

        /// A host slow to connect holds back only its own facts: the others' are read as soon as each is
        /// connected.
        @Test func factsDoNotWaitForEveryHostToConnect() async throws {
            let (plan, rig, state) = try await Self.applied()
            var transport = FakeTransport(hosts: rig.hosts)
            transport.connectDelay = ["worker-2": .milliseconds(500)]
            let log = EventLog()
            let result = await PlanRefresh(plan: plan, transport: transport,
                                           resolve: { n, a, p in HostEndpoint(name: n, address: a, port: p, user: "root", knownHostsPath: "/dev/null") },
                                           parallelism: 4, events: log.sink).run(state: state)
            #expect(result.failures.isEmpty && Set(result.refreshed) == ["cp-1", "worker-1", "worker-2"])
            let order = log.connectOrder()
            let slow = order.firstIndex(of: "connected worker-2")
            #expect(slow != nil && order.firstIndex(of: "facts cp-1").map { $0 < slow! } == true, "\(order)")
            #expect(order.last == "facts worker-2", "\(order)")
        }

        /// Swap on again and packages removed become changes, explained by the drift; the records of the
        /// refreshed state lose exactly the steps the drift undoes.
        @Test func driftBecomesChanges() async throws {
            let (plan, rig, state) = try await Self.applied()
            rig.hosts["worker-1"]!.lock.withLock { rig.hosts["worker-1"]!.swapOn = true }
            _ = rig.hosts["worker-2"]!.lock.withLock { rig.hosts["worker-2"]!.files.remove("pkgs") }
            let log = EventLog()
            let result = await Self.refresh(plan, rig, state, log: log)
            #expect(result.failures.isEmpty)
            #expect(result.drift.map(\.host) == ["worker-1", "worker-2", "worker-2"], "\(result.drift)")
            #expect(result.drift[0].steps == ["prepare"] && result.drift[0].message.contains("swap is on again"))
            #expect(Set(result.drift.dropFirst().flatMap(\.steps)) == ["kubernetes-packages", "containerd"])
            #expect(result.state.hosts["worker-1"]?.steps["prepare"] == nil)
            #expect(result.state.hosts["worker-1"]?.steps["containerd"] != nil)
            #expect(result.state.hosts["worker-2"]?.steps["kubernetes-packages"] == nil)

            var changes = ChangeSet.diff(plan: plan, state: result.state)
            changes.explain(result.drift)
            #expect(changes.changes.map(\.name) == ["worker-1", "worker-2"])
            let w1 = changes.changes[0]
            #expect(w1.action == .update && w1.steps == ["prepare"])
            #expect(w1.reasons == ["drift: swap is on again; the host will be prepared again"])
            let w2 = changes.changes[1]
            #expect(w2.steps == ["kubernetes-packages", "containerd"])
            #expect(w2.reasons.count == 2 && w2.reasons.allSatisfy { $0.hasPrefix("drift: ") }, "\(w2.reasons)")
            // The original state is untouched and nothing was written.
            #expect(state.hosts["worker-1"]?.steps["prepare"] != nil)
            // The facts events are those apply shows.
            #expect(log.all.filter { if case .facts = $0 { return true }; return false }.count == 3)
        }

        /// A replaced machine (new machine-id) brings all its steps back.
        @Test func replacedMachineRunsEverythingAgain() async throws {
            let (plan, rig, state) = try await Self.applied(workers: 1)
            rig.hosts["worker-1"]!.lock.withLock { rig.hosts["worker-1"]!.machineID = "0123456789abcdef" }
            let result = await Self.refresh(plan, rig, state)
            #expect(result.drift.count == 1 && result.drift[0].message.contains("machine-id changed"))
            #expect(result.state.hosts["worker-1"]?.steps.isEmpty == true)
            var changes = ChangeSet.diff(plan: plan, state: result.state)
            changes.explain(result.drift)
            let w = try #require(changes.changes.first { $0.name == "worker-1" })
            #expect(Set(w.steps) == Set(StepCatalogue.steps(for: plan.spec.hosts[1], in: plan).map(\.name.rawValue)))
            #expect(w.reasons == ["drift: " + result.drift[0].message])
        }

        /// Unreachable hosts are reported with why; the others are still refreshed.
        @Test func unreachableHostIsReportedAndTheRestRefreshed() async throws {
            let (plan, rig, state) = try await Self.applied()
            rig.hosts["worker-1"]!.lock.withLock { rig.hosts["worker-1"]!.swapOn = true }
            let result = await Self.refresh(plan, rig, state, unreachable: ["worker-2"])
            #expect(result.failures.map(\.host) == ["worker-2"])
            #expect(result.failures[0].reason.contains("connection refused"))
            #expect(Set(result.refreshed) == ["cp-1", "worker-1"])
            #expect(result.drift.map(\.host) == ["worker-1"])
            #expect(result.state.hosts["worker-2"] == state.hosts["worker-2"])
        }

        /// Hosts the state does not know yet (or knows at another address) are not contacted.
        @Test func onlyRecordedHostsAreContacted() async throws {
            let (_, rig, state) = try await Self.applied(workers: 1)
            var bigger = ApplyEngineTests.plan(workers: 2)
            bigger.spec.hosts[1].address = "10.0.9.9"  // worker-1 moved: replaced whatever its facts say
            let hosts = rig.hosts.merging(["worker-2": FakeHost(name: "worker-2")]) { a, _ in a }
            let before = hosts.mapValues { $0.commands.count }
            let result = await PlanRefresh(plan: bigger, transport: FakeTransport(hosts: hosts),
                                           resolve: { n, a, p in HostEndpoint(name: n, address: a, port: p, user: "root", knownHostsPath: "/dev/null") },
                                           parallelism: 2).run(state: state)
            #expect(result.refreshed == ["cp-1"])
            #expect(hosts["worker-1"]!.commands.count == before["worker-1"]!)
            #expect(hosts["worker-2"]!.commands.isEmpty)
            let changes = ChangeSet.diff(plan: bigger, state: result.state)
            #expect(changes.changes.map { "\($0.action.symbol) \($0.name)" } == ["-/+ worker-1", "+ worker-2"])
        }
    }
}
