import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

@Suite(.serialized) struct ApplyEngineTests {
    static func plan(workers: Int = 2, controlPlanes: Int = 1) -> ClusterPlan {
        var hosts: [ClusterPlan.Host] = []
        for i in 1...controlPlanes { hosts.append(.init(name: "cp-\(i)", address: "10.0.0.\(i)", role: .controlPlane)) }
        for i in 0..<workers { hosts.append(.init(name: "worker-\(i + 1)", address: "10.0.1.\(i + 1)", role: .worker, labels: ["tier": "app"])) }
        return ClusterPlan(metadata: .init(name: "lab"), spec: .init(
            kubernetes: .init(version: "1.34.1", controlPlaneEndpoint: controlPlanes > 1 ? "10.0.0.1:6443" : nil),
            hosts: hosts))
    }

    struct Rig {
        let hosts: [String: FakeHost]
        let store = MemoryStore()
        let log = EventLog()
        let kubeconfig: String

        init(plan: ClusterPlan) {
            var h: [String: FakeHost] = [:]
            for x in plan.spec.hosts { h[x.name] = FakeHost(name: x.name) }
            hosts = h
            FakeCluster.shared = FakeCluster()
            FakeCluster.shared.hosts = Array(h.values)
            kubeconfig = NSTemporaryDirectory() + "bootstrap-test-\(UUID().uuidString).kubeconfig"
        }

        func apply(_ plan: ClusterPlan, state: ClusterState, transport: FakeTransport? = nil,
                   approve: (@Sendable (Refreshed) async throws -> Void)? = nil,
                   readyTimeout: Duration = .seconds(2), progressInterval: Duration = .seconds(10))
            async throws -> (RunReport, ClusterState)
        {
            let run = RunState(state: state, store: store)
            let engine = ApplyEngine(
                plan: plan, runState: run, transport: transport ?? FakeTransport(hosts: hosts),
                resolve: { n, a, p in HostEndpoint(name: n, address: a, port: p, user: "root", knownHostsPath: "/dev/null") },
                options: ApplyOptions(parallelism: 4, kubeconfigPath: kubeconfig, readyTimeout: readyTimeout,
                                      readyPollInterval: .milliseconds(10), progressInterval: progressInterval,
                                      approve: approve),
                events: log.sink)
            let report = try await engine.run()
            return (report, await run.state)
        }
    }

    @Test func freshApplyRunsEveryStepInOrderAndRecordsThem() async throws {
        let plan = Self.plan()
        let rig = Rig(plan: plan)
        let (report, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(report.succeeded, "\(report.failures)")
        #expect(rig.hosts["cp-1"]!.inits == 1)
        #expect(rig.hosts["worker-1"]!.joins == 1 && rig.hosts["worker-2"]!.joins == 1)
        for h in plan.spec.hosts {
            let want = StepCatalogue.steps(for: h, in: plan)
            #expect(state.hosts[h.name]?.steps.count == want.count)
            for s in want { #expect(state.hosts[h.name]?.steps[s.name.rawValue]?.inputHash == s.inputHash) }
        }
        #expect(state.cluster.initializedOn == "cp-1")
        #expect(state.cluster.caCertHash == "sha256:" + String(repeating: "ab", count: 32))
        #expect(state.cluster.steps["helm"] != nil && state.cluster.steps["kubeconfig"] != nil)
        #expect(state.addons["cni/flannel"]?.version == "v0.26.1")
        // Helm came before the CNI release, which came before the wait for Ready nodes.
        let run = rig.log.stepsRun
        #expect(run.firstIndex(of: "cp-1/helm")! < run.firstIndex(of: "cp-1/release cni/flannel")!)
        // Joins came after init.
        let order = rig.log.stepsRun
        let initAt = order.firstIndex(of: "cp-1/init")!
        #expect(order.firstIndex(of: "worker-1/join-worker")! > initAt)
        // The token and key never appear in events.
        let token = state.cluster.secrets["bootstrapToken"]!.value.revealed
        let key = state.cluster.secrets["certificateKey"]!.value.revealed
        #expect(!rig.log.text.contains(token) && !rig.log.text.contains(key))
        // The kubeconfig points at the endpoint and is 0600.
        let attrs = try FileManager.default.attributesOfItem(atPath: rig.kubeconfig)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        #expect(try String(contentsOfFile: rig.kubeconfig, encoding: .utf8).contains("server: https://10.0.0.1:6443"))
        // State was written after every step (at least once per recorded step).
        #expect(rig.store.writes.count >= 3 * 6)
    }

    @Test func kubeadmConfigsTravelOnStdinInTheCommandThatUsesThem() async throws {
        let plan = Self.plan(workers: 1)
        let rig = Rig(plan: plan)
        let (report, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(report.succeeded, "\(report.failures)")
        let token = try #require(state.cluster.secrets["bootstrapToken"]).value.revealed
        for (host, kind) in [("cp-1", "InitConfiguration"), ("worker-1", "JoinConfiguration")] {
            let h = rig.hosts[host]!
            let (commands, stdins) = h.lock.withLock { (h.log, h.stdins) }
            // One round trip: no upload, no separate mkdir or "already joined?" probe before it.
            #expect(!commands.contains { $0.hasPrefix("upload ") && $0.contains("kubeadm") }, "\(commands)")
            let i = try #require(commands.firstIndex { $0.contains("kubeadm init --config") || $0.contains("kubeadm join --config") })
            #expect(!commands[..<i].contains { $0.hasPrefix("mkdir -p -m 700") || $0 == "test -f /etc/kubernetes/kubelet.conf" })
            let config = String(decoding: try #require(stdins[i]), as: UTF8.self)
            #expect(config.contains("kind: \(kind)") && config.contains(token))
            // The token is in the config on stdin, never in a command line.
            #expect(!commands.contains { $0.contains(token) })
            // The config is written 0600 under the lock, only when the command is about to run.
            #expect(commands[i].contains("umask 077") && commands[i].contains("cat > /var/lib/bootstrap/kubeadm-"))
        }
    }

    @Test func withoutWorkersControlPlanesLoseTheirTaintAndGetItBackWithWorkers() async throws {
        let alone = Self.plan(workers: 0)
        let rig = Rig(plan: Self.plan(workers: 1))
        let (report, state) = try await rig.apply(alone, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(report.succeeded, "\(report.failures)")
        let untaint = "kubectl --kubeconfig /etc/kubernetes/admin.conf taint node cp-1 --overwrite "
            + "node-role.kubernetes.io/control-plane:NoSchedule-"
        #expect(rig.hosts["cp-1"]!.commands.contains(untaint), "\(rig.hosts["cp-1"]!.commands)")
        // Nothing to do on a second run.
        let before = rig.hosts["cp-1"]!.commands.count
        let (again, converged) = try await rig.apply(alone, state: state)
        #expect(again.succeeded && !again.changed)
        #expect(!rig.hosts["cp-1"]!.commands.dropFirst(before).contains { $0.contains(" taint ") })
        // A worker arrives: the control plane's node-config runs again and puts kubeadm's taint back.
        let (withWorker, _) = try await rig.apply(Self.plan(workers: 1), state: converged)
        #expect(withWorker.succeeded, "\(withWorker.failures)")
        let retaint = "kubectl --kubeconfig /etc/kubernetes/admin.conf taint node cp-1 --overwrite "
            + "node-role.kubernetes.io/control-plane:NoSchedule"
        #expect(rig.hosts["cp-1"]!.commands.dropFirst(before).contains(retaint), "\(rig.hosts["cp-1"]!.commands)")
        // A cluster planned with workers from the start never touches the taint.
        let usual = Rig(plan: Self.plan(workers: 1))
        _ = try await usual.apply(Self.plan(workers: 1), state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(!usual.hosts["cp-1"]!.commands.contains { $0.contains("control-plane:NoSchedule") })
    }

    struct Declined: Error {}

    @Test func approvalComesAfterTheRefreshAndADeclineChangesNothing() async throws {
        let plan = Self.plan(workers: 1)
        let rig = Rig(plan: plan)
        let (_, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        rig.hosts["worker-1"]!.swapOn = true
        let before = rig.hosts.mapValues { $0.commands.count }
        let writes = rig.store.writes.count
        let seen = Locked<Refreshed?>(nil)
        await #expect(throws: Declined.self) {
            _ = try await rig.apply(plan, state: state) { refreshed in
                seen.set(refreshed)
                throw Declined()
            }
        }
        // The approval saw the drift and the state as the hosts show it: what plan --refresh shows.
        let refreshed = try #require(seen.get())
        #expect(refreshed.drift.map(\.host) == ["worker-1"])
        var changes = ChangeSet.diff(plan: plan, state: refreshed.state, objects: [])
        changes.explain(refreshed.drift)
        #expect(changes.changes.map(\.name) == ["worker-1"])
        #expect(changes.changes.first?.reasons.first == "drift: swap is on again; the host will be prepared again")
        // Declined: nothing but the facts ran, nothing was written.
        for (name, host) in rig.hosts {
            let new = host.commands.dropFirst(before[name]!)
            #expect(new.count == 1 && new.allSatisfy { $0.hasPrefix(". /etc/os-release") }, "\(name): \(Array(new))")
        }
        #expect(rig.store.writes.count == writes)

        // A fresh cluster: the hosts the state does not know yet are shown as new, not as refreshed records.
        let fresh = Rig(plan: plan)
        let freshSeen = Locked<Refreshed?>(nil)
        let (report, _) = try await fresh.apply(plan, state: ClusterState(name: "lab", toolVersion: "t")) { freshSeen.set($0) }
        #expect(report.succeeded)
        #expect(freshSeen.get()?.state.hosts.isEmpty == true)
    }

    @Test func secondApplyRunsNoMutatingCommand() async throws {
        let plan = Self.plan()
        let rig = Rig(plan: plan)
        let (_, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        let before = rig.hosts.mapValues { $0.commands.count }
        let writesBefore = rig.store.writes.count
        let (report, refreshed) = try await rig.apply(plan, state: state)
        #expect(report.succeeded && !report.changed)
        let ranSteps: Int = rig.log.stepsRun.count
        #expect(ranSteps == 3 * 7 + 3, "only the first run's steps ran: 7 per host, helm, kubeconfig, the CNI release")
        for (name, host) in rig.hosts {
            let new = host.commands.dropFirst(before[name]!)
            for cmd in new {
                let readOnly = cmd.contains("/etc/os-release") || cmd.hasPrefix("true") || cmd.contains("get nodes -o json")
                    || cmd == Certificates.read.script  // the expiry, read while the facts report none (the fakes never do)
                #expect(readOnly, "\(name) ran a mutating command on a no-op apply: \(cmd)")
            }
        }
        #expect(rig.store.writes.count == writesBefore, "a no-op apply wrote the state")
        #expect(refreshed.serial == state.serial)
    }

    /// Each host's facts are read as soon as it is connected: a host slow to connect holds back only its
    /// own facts, not the others' (no barrier between connecting every host and reading the facts).
    @Test func factsOfAHostDoNotWaitForTheOtherHostsToConnect() async throws {
        let plan = Self.plan()
        let rig = Rig(plan: plan)
        let (_, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        var transport = FakeTransport(hosts: rig.hosts)
        transport.connectDelay = ["worker-2": .milliseconds(500)]
        let skip = rig.log.all.count
        let (report, _) = try await rig.apply(plan, state: state, transport: transport)
        #expect(report.succeeded && !report.changed, "\(report.failures)")
        let order = rig.log.connectOrder(from: skip)
        let slow = order.firstIndex(of: "connected worker-2")
        #expect(slow != nil && order.firstIndex(of: "facts cp-1").map { $0 < slow! } == true, "\(order)")
        #expect(slow != nil && order.firstIndex(of: "facts worker-1").map { $0 < slow! } == true, "\(order)")
        #expect(order.filter { $0.hasPrefix("facts ") }.count == 3, "\(order)")
    }

    @Test func resumeAfterKillDuringInitDoesNotInitTwice() async throws {
        let plan = Self.plan(workers: 1)
        let rig = Rig(plan: plan)
        rig.hosts["worker-1"]!.failOn = "kubeadm join"
        let (first, s1) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(!first.succeeded)
        #expect(s1.hosts["worker-1"]?.steps["join-worker"] == nil)
        // Simulate a kill after init acted but before it was recorded.
        var s2 = s1
        s2.hosts["cp-1"]?.steps["init"] = nil
        rig.hosts["worker-1"]!.failOn = nil
        let (second, s3) = try await rig.apply(plan, state: s2)
        #expect(second.succeeded, "\(second.failures)")
        #expect(rig.hosts["cp-1"]!.inits == 1)
        #expect(rig.hosts["worker-1"]!.joins == 1)
        #expect(s3.hosts["cp-1"]?.steps["init"] != nil)
    }

    @Test func failedWorkerDoesNotStopOthers() async throws {
        let plan = Self.plan(workers: 3)
        let rig = Rig(plan: plan)
        rig.hosts["worker-2"]!.failOn = "containerd config default"
        let (report, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(!report.succeeded)
        #expect(state.hosts["worker-1"]?.steps["join-worker"] != nil)
        #expect(state.hosts["worker-3"]?.steps["join-worker"] != nil)
        #expect(state.hosts["worker-2"]?.steps["prepare"] != nil)
        #expect(state.hosts["worker-2"]?.steps["containerd"] == nil)
        #expect(report.hosts.first { $0.host == "worker-2" }?.result == .failed)
    }

    @Test func preflightErrorChangesNothing() async throws {
        let plan = Self.plan()
        let rig = Rig(plan: plan)
        rig.hosts["cp-1"]!.cpus = 1
        await #expect(throws: EngineError.self) {
            _ = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        }
        for host in rig.hosts.values {
            #expect(host.commands.allSatisfy { $0.contains("/etc/os-release") || $0.hasPrefix("true") || $0.contains("madison") },
                    "\(host.commands)")
        }
        #expect(rig.log.text.contains("control plane needs at least 2 CPUs, has 1"))
    }

    @Test(arguments: [FakeHost.OS.ubuntu2404, .amazonLinux2023])
    func aPatchTheRepositoryLacksFailsPreflightWithWhatItHas(os: FakeHost.OS) async throws {
        var plan = Self.plan()
        plan.spec.kubernetes.version = "1.35.9"
        let rig = Rig(plan: plan)
        for h in rig.hosts.values {
            h.os = os
            h.repositoryPatches = ["1.35": [0, 1, 2, 3, 4, 5]]
        }
        let error = await #expect(throws: EngineError.self) {
            _ = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        }
        #expect(error?.description == "preflight found 1 error; nothing was changed", "\(String(describing: error))")
        let base = os.packageManager == "apt" ? "https://pkgs.k8s.io/core:/stable:/v1.35/deb/"
                                             : "https://pkgs.k8s.io/core:/stable:/v1.35/rpm/"
        #expect(rig.log.text.contains("Kubernetes 1.35.9 is not in the package repository \(base) (it has 1.35.0, 1.35.1, 1.35.2, 1.35.3, 1.35.4, 1.35.5) (2 other hosts of the same OS and architecture use the same repository)"),
                "\(rig.log.text)")
        // One host asks (the hosts share the OS and the repository); nothing changed anywhere.
        let asked = rig.hosts.values.filter { $0.commands.contains { $0.contains("madison") || $0.contains("--showduplicates") } }
        #expect(asked.map(\.name) == ["cp-1"])
        for host in rig.hosts.values {
            #expect(!host.commands.contains { $0.contains(" install ") || $0.contains("/etc/apt/sources.list.d/kubernetes.list") || $0.contains("/etc/yum.repos.d") })
        }

        // A patch it has passes.
        plan.spec.kubernetes.version = "1.35.5"
        let (report, _) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(report.succeeded, "\(report.failures)")

        // Hosts whose packages are at the plan's version already (the fake hosts install 1.34.1) are not asked.
        let fresh = Self.plan()
        let other = Rig(plan: fresh)
        for h in other.hosts.values { h.os = os }
        let (first, state) = try await other.apply(fresh, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(first.succeeded, "\(first.failures)")
        let before = other.hosts.mapValues { $0.commands.count }
        let (again, _) = try await other.apply(fresh, state: state)
        #expect(again.succeeded, "\(again.failures)")
        for (name, host) in other.hosts {
            #expect(!host.commands.dropFirst(before[name]!).contains { $0.contains("madison") || $0.contains("--showduplicates") },
                    "\(name)")
        }
    }

    @Test func unreachableHostStopsBeforeAnyChange() async throws {
        let plan = Self.plan()
        let rig = Rig(plan: plan)
        await #expect(throws: EngineError.self) {
            _ = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"),
                                    transport: FakeTransport(hosts: rig.hosts, unreachable: ["worker-2"]))
        }
        // The hosts that answered had their facts read (read-only, as soon as each was connected); nothing else.
        for (name, host) in rig.hosts {
            #expect(host.commands.allSatisfy { $0.contains("/etc/os-release") }, "\(name): \(host.commands)")
        }
        #expect(rig.hosts["worker-2"]!.commands.isEmpty)
        #expect(rig.store.writes.isEmpty)
    }

    @Test func controlPlanesJoinOneAtATimeAfterInit() async throws {
        let plan = Self.plan(workers: 2, controlPlanes: 3)
        let rig = Rig(plan: plan)
        let (report, _) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(report.succeeded, "\(report.failures)")
        let started = rig.log.all.compactMap { e -> String? in
            if case .stepStarted(let h, let s) = e, s.hasPrefix("join-control-plane") || s == "init" { return h }
            if case .stepFinished(let h, let s, _, _) = e, s.hasPrefix("join-control-plane") || s == "init" { return "/" + h }
            return nil
        }
        #expect(started == ["cp-1", "/cp-1", "cp-2", "/cp-2", "cp-3", "/cp-3"])
    }

    @Test func addingAWorkerTouchesOnlyIt() async throws {
        let plan = Self.plan(workers: 1)
        let bigger = Self.plan(workers: 2)
        let rig = Rig(plan: bigger)
        let (_, s1) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        let before = rig.hosts.mapValues { $0.commands.count }
        let (report, s2) = try await rig.apply(bigger, state: s1)
        #expect(report.succeeded, "\(report.failures)")
        #expect(s2.hosts["worker-2"]?.steps["join-worker"] != nil)
        #expect(rig.hosts["worker-1"]!.commands.dropFirst(before["worker-1"]!).allSatisfy { $0.contains("/etc/os-release") || $0.hasPrefix("true") })
        #expect(rig.hosts["worker-2"]!.joins == 1)
    }

    @Test func removingAWorkerDrainsDeletesAndResetsIt() async throws {
        let plan = Self.plan(workers: 2)
        let rig = Rig(plan: plan)
        let (_, s1) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        let smaller = Self.plan(workers: 1)
        let (report, s2) = try await rig.apply(smaller, state: s1)
        #expect(report.succeeded, "\(report.failures)")
        #expect(s2.hosts["worker-2"] == nil)
        #expect(rig.hosts["cp-1"]!.commands.contains { $0.contains("drain worker-2") })
        #expect(rig.hosts["cp-1"]!.commands.contains { $0.contains("delete node worker-2") })
        #expect(rig.hosts["worker-2"]!.commands.contains { $0.contains("kubeadm reset -f") })
        // The kubeadm order: drain, reset, then delete (deleted first, the running kubelet registers it again).
        let commands = rig.log.all.compactMap { e -> String? in
            guard case .command(let h, let c) = e else { return nil }
            if h == "cp-1" && c.contains("drain worker-2") { return "drain" }
            if h == "worker-2" && c.contains("kubeadm reset -f") { return "reset" }
            if h == "cp-1" && c.contains("delete node worker-2") { return "delete" }
            return nil
        }
        #expect(commands == ["drain", "reset", "delete"])
    }

    @Test func aTokenTheClusterLostIsReplacedBeforeAJoin() async throws {
        let small = Self.plan(workers: 1)
        let rig = Rig(plan: Self.plan(workers: 2))
        let (_, s1) = try await rig.apply(small, state: ClusterState(name: "lab", toolVersion: "t"))
        let old = s1.cluster.secrets["bootstrapToken"]!.value
        // Still valid by its recorded expiry, but deleted from the cluster.
        rig.hosts["cp-1"]!.deletedTokenIDs.insert(String(old.revealed.prefix(6)))
        let (report, s2) = try await rig.apply(Self.plan(workers: 2), state: s1)
        #expect(report.succeeded, "\(report.failures)")
        let fresh = s2.cluster.secrets["bootstrapToken"]!.value
        #expect(fresh != old)
        #expect(rig.hosts["cp-1"]!.commands.filter { $0.contains("kubeadm token create") }.count == 1)
        // The check sends the token's ID only, never the token.
        #expect(!rig.hosts["cp-1"]!.commands.contains { $0.contains(old.revealed) })
        let joinConfig = rig.hosts["worker-2"]!.stdins.compactMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
            .first { $0.contains("JoinConfiguration") }
        #expect(joinConfig?.contains(fresh.revealed) == true && joinConfig?.contains(old.revealed) == false)

        // Still there: reused, no new token.
        let rig2 = Rig(plan: Self.plan(workers: 2))
        let (_, t1) = try await rig2.apply(small, state: ClusterState(name: "lab", toolVersion: "t"))
        let (report2, t2) = try await rig2.apply(Self.plan(workers: 2), state: t1)
        #expect(report2.succeeded)
        #expect(t2.cluster.secrets["bootstrapToken"]!.value == t1.cluster.secrets["bootstrapToken"]!.value)
        #expect(!rig2.hosts["cp-1"]!.commands.contains { $0.contains("kubeadm token create") })
    }

    @Test func quorumAndLiveClusterChangesAreRefused() async throws {
        let plan = Self.plan(workers: 0, controlPlanes: 3)
        let rig = Rig(plan: plan)
        let (_, s1) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        func refusal(_ p: ClusterPlan) -> String? { ApplyPlan.make(plan: p, state: s1).refusal }
        var two = plan
        two.spec.hosts.removeAll { $0.name == "cp-3" || $0.name == "cp-2" }
        #expect(refusal(two)?.contains("etcd needs a majority (2) to keep quorum") == true, "\(refusal(two) ?? "")")
        var one = plan
        one.spec.hosts.removeAll { $0.name == "cp-3" }
        #expect(refusal(one) == nil)
        var calico = plan
        calico.spec.network.cni = .calico
        #expect(refusal(calico) != nil)
        var pods = plan
        pods.spec.network.podSubnet = "10.200.0.0/16"
        #expect(refusal(pods) != nil)
        // The engine refuses each with the plan's words, before contacting any host.
        for p in [two, calico, pods] {
            let before = rig.hosts.mapValues { $0.commands.count }
            do {
                _ = try await rig.apply(p, state: s1)
                Issue.record("not refused")
            } catch EngineError.refused(let why) {
                #expect(why == refusal(p))
            }
            #expect(rig.hosts.mapValues { $0.commands.count } == before)
        }
    }

    @Test func expiredCertificateKeyIsRenewedForALaterControlPlane() async throws {
        let plan = Self.plan(workers: 0, controlPlanes: 1)
        var bigger = Self.plan(workers: 0, controlPlanes: 3)
        bigger.spec.kubernetes.controlPlaneEndpoint = "10.0.0.1:6443"
        var p1 = plan
        p1.spec.kubernetes.controlPlaneEndpoint = "10.0.0.1:6443"
        let rig = Rig(plan: bigger)
        let (_, s1) = try await rig.apply(p1, state: ClusterState(name: "lab", toolVersion: "t"))
        let oldKey = s1.cluster.secrets["certificateKey"]!.value
        rig.hosts["cp-1"]!.clock += 3 * 3600  // three hours later, by the cluster's clock
        let (report, s2) = try await rig.apply(bigger, state: s1)
        #expect(report.succeeded, "\(report.failures)")
        #expect(s2.cluster.secrets["certificateKey"]!.value != oldKey)
        #expect(rig.hosts["cp-1"]!.commands.filter { $0.contains("init phase upload-certs") }.count == 1)
        #expect(rig.hosts["cp-1"]!.commands.filter { $0.contains("kubeadm token create") }.count == 1)
    }

    /// The `.waiting` events of a run: (host, step, message, awaiting, elapsed, pods).
    static func waits(_ log: EventLog)
        -> [(host: String, step: String, message: String, awaiting: [String], elapsed: Duration, pods: ReleasePods.Count?)]
    {
        log.all.compactMap { e in
            if case .waiting(let h, let s, let m, let a, let d, let p) = e { return (h, s, m, a, d, p) }
            return nil
        }
    }

    @Test func waitReadySaysWhichNodesItStillWaitsForAtEachInterval() async throws {
        let plan = Self.plan(workers: 2)
        let rig = Rig(plan: plan)
        FakeCluster.shared.notReady = ["worker-2"]
        let interval = Duration.milliseconds(300)
        let (report, _) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"),
                                              readyTimeout: .milliseconds(1400), progressInterval: interval)
        #expect(!report.succeeded)
        let waits = Self.waits(rig.log).filter { $0.step == "wait-ready" }
        // One line per interval over the 1.4 s wait: at most 4, at least 1 however loaded the machine is.
        #expect((1...4).contains(waits.count), "\(waits.map(\.elapsed))")
        for (i, w) in waits.enumerated() {
            #expect(w.host == "cp-1")
            #expect(w.message == "waiting for 1 node to be Ready: worker-2")
            #expect(w.awaiting == ["worker-2"])
            // Never before its time (how late is the machine's business, not a test's).
            #expect(w.elapsed >= interval * (i + 1), "\(w.elapsed)")
        }
        // Once every node is Ready, no line is printed.
        let quiet = Rig(plan: plan)
        let (ok, _) = try await quiet.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"),
                                            progressInterval: .milliseconds(1))
        #expect(ok.succeeded)
        #expect(Self.waits(quiet.log).filter { $0.step == "wait-ready" }.count <= 1)
    }

    @Test func helmReleaseSaysItIsStillWaitingUntilItFinishes() async throws {
        let plan = Self.plan(workers: 1)
        let rig = Rig(plan: plan)
        let cp = rig.hosts["cp-1"]!
        cp.slow = (match: "helm upgrade --install", duration: .milliseconds(1000))
        // The flannel DaemonSet wants a pod on each of the 2 nodes, 1 is Ready; another release's workloads
        // and a workload Helm did not make are not counted.
        cp.workloads = """
            DaemonSet    kube-flannel   kube-flannel-ds   flannel   kube-flannel   <none>   <none>   2   1
            Deployment   monitoring     grafana           kps       monitoring     1        1        <none>   <none>
            Deployment   kube-system    coredns           <none>    <none>         2        2        <none>   <none>
            """
        let (report, _) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"),
                                              progressInterval: .milliseconds(300))
        #expect(report.succeeded, "\(report.failures)")
        let waits = Self.waits(rig.log).filter { $0.step == "release cni/flannel" }
        #expect((2...3).contains(waits.count), "\(waits.map(\.elapsed))")
        for w in waits {
            #expect(w.message == "release kube-flannel/flannel: 1 of 2 pods ready")
            #expect(w.pods == ReleasePods.Count(ready: 1, total: 2))
            #expect(w.awaiting == ["kube-flannel/flannel"])
        }
        // The release ran on a session of its own to cp-1, its pods were counted on another while Helm held it;
        // both were closed at the end with the main one.
        #expect(cp.sessionsOpened == 3)
        #expect(cp.mostRunning == 2)
        #expect(cp.closed == 3)
        // Nothing about the release after it finished.
        let finishedAt = rig.log.all.firstIndex {
            if case .stepFinished(_, "release cni/flannel", _, _) = $0 { return true }; return false
        }!
        let lastWait = rig.log.all.lastIndex {
            if case .waiting(_, "release cni/flannel", _, _, _, _) = $0 { return true }; return false
        }!
        #expect(lastWait < finishedAt)
    }

    /// When no second session can be opened, the release still runs, and its lines say what Helm waits for.
    @Test func helmProgressWithoutASecondSessionSaysWhatHelmWaitsFor() async throws {
        let plan = Self.plan(workers: 1)
        let rig = Rig(plan: plan)
        let cp = rig.hosts["cp-1"]!
        cp.slow = (match: "helm upgrade --install", duration: .milliseconds(700))
        let transport = FakeTransport(hosts: rig.hosts, sessionLimit: ["cp-1": 1])
        let (report, _) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"),
                                              transport: transport, progressInterval: .milliseconds(200))
        #expect(report.succeeded, "\(report.failures)")
        let waits = Self.waits(rig.log).filter { $0.step == "release cni/flannel" }
        #expect(!waits.isEmpty)
        for w in waits {
            #expect(w.message == "release kube-flannel/flannel: waiting for its pods to be Ready (helm --wait)")
            #expect(w.pods == nil)
        }
        // Tried once, said once in cp-1's log, not again at every line.
        #expect(cp.sessionsOpened == 1)
        let said = rig.log.all.filter {
            if case .output("cp-1", .stderr, let line) = $0 { return line.hasPrefix("no second session for progress: ") }
            return false
        }
        #expect(said.count == 1, "\(rig.log.text)")
    }
}

/// A value shared with a @Sendable closure.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func set(_ v: T) { lock.withLock { value = v } }
    func get() -> T { lock.withLock { value } }
}

/// Hosts reached by DNS names: kubeadm and the kubelet get their cluster addresses, read from the facts.
/// (In the serialized suite: the fake cluster is shared.)
extension ApplyEngineTests {
    @Test func theClusterAddressComesFromTheFactsAndIsRecorded() async throws {
        var plan = Self.plan(workers: 1)
        plan.spec.hosts[0].address = "cp-1.example.com"
        plan.spec.hosts[1].address = "worker-1.example.com"
        plan.spec.hosts[1].privateAddress = "10.0.1.7"
        let rig = Rig(plan: plan)
        rig.hosts["cp-1"]!.defaultAddress = "10.0.0.5"
        rig.hosts["worker-1"]!.defaultAddress = "10.0.1.99"  // the plan's privateAddress wins
        let (report, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(report.succeeded, "\(report.failures)")
        #expect(state.hosts["cp-1"]?.privateAddress == "10.0.0.5")
        #expect(state.hosts["worker-1"]?.privateAddress == "10.0.1.7")
        let initConfig = rig.hosts["cp-1"]!.stdins.compactMap { $0.map { String(decoding: $0, as: UTF8.self) } }
            .first { $0.contains("InitConfiguration") } ?? ""
        #expect(initConfig.contains("advertiseAddress: 10.0.0.5"), "\(initConfig)")
        let joinConfig = rig.hosts["worker-1"]!.stdins.compactMap { $0.map { String(decoding: $0, as: UTF8.self) } }
            .first { $0.contains("JoinConfiguration") } ?? ""
        #expect(joinConfig.contains("apiServerEndpoint: 10.0.0.5:6443"), "\(joinConfig)")
        #expect(joinConfig.contains("value: 10.0.1.7"))
        // The kubeconfig is the operator's: it points at the address bootstrap reached the host by.
        #expect(try String(contentsOfFile: rig.kubeconfig, encoding: .utf8).contains("server: https://cp-1.example.com:6443"))
        // A second apply has nothing to do.
        let (again, _) = try await rig.apply(plan, state: state)
        #expect(again.succeeded && !again.changed)
    }

    @Test func aDNSNameWithoutADefaultRouteIsRefusedInPreflight() async throws {
        var plan = Self.plan(workers: 0)
        plan.spec.hosts[0].address = "cp-1.example.com"
        let rig = Rig(plan: plan)
        await #expect(throws: (any Error).self) {
            _ = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        }
        #expect(rig.hosts["cp-1"]!.inits == 0)
        #expect(rig.log.text.contains("cp-1.example.com is a DNS name"), "\(rig.log.text)")
    }
}
