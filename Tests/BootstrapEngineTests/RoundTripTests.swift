import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// How many commands (SSH round trips, each one waiting for the one before on its host) each host runs in a
/// fresh apply and in a no-op one, per step: so that a step cannot grow another round trip unnoticed. A change
/// that adds or merges commands updates these figures, deliberately.
/// (Among ApplyEngineTests, serialized: the fake cluster is shared.)
extension ApplyEngineTests {
    enum RoundTrips {
        /// Commands by the host that ran them and what that host was doing: its own step, else the run's phase.
        /// (The first control plane also runs commands for other hosts' steps, counted under its own activity.)
        static func count(_ events: [EngineEvent]) -> [String: [String: Int]] {
            var phase = "-"
            var current: [String: String] = [:]
            var out: [String: [String: Int]] = [:]
            for e in events {
                switch e {
                case .phase(let p): phase = p
                case .stepStarted(let h, let s): current[h] = s
                case .stepFinished(let h, _, _, _), .stepFailed(let h, _, _, _): current[h] = nil
                case .command(let h, _): out[h, default: [:]][current[h] ?? phase, default: 0] += 1
                default: break
                }
            }
            return out
        }
    }

    @Test func freshAndNoOpApplyRoundTripsPerHostAndStep() async throws {
        let plan = Self.plan(workers: 2)
        let rig = Rig(plan: plan)
        let (report, state) = try await rig.apply(plan, state: ClusterState(name: "lab", toolVersion: "t"))
        #expect(report.succeeded, "\(report.failures)")
        let fresh = RoundTrips.count(rig.log.all)
        // A worker: facts, preflight's port probe, one command per step (the package transaction restarts a
        // node's kubelet in its own script; join checks kubelet.conf in its own script; node-config runs on
        // the control plane). Before the merges: 9 (the kubelet restart had a command of its own).
        let worker = ["connect": 1, "preflight": 1, "prepare": 1, "kubernetes-repo": 1, "kubernetes-packages": 1,
                      "containerd": 1, "images": 1, "join-worker": 1]
        #expect(fresh["worker-1"] == worker, "\(fresh["worker-1"] ?? [:])")
        #expect(fresh["worker-2"] == worker, "\(fresh["worker-2"] ?? [:])")
        // The control plane: the same up to its images (preflight also asks the package repository, once for
        // all hosts of its OS), then init in two (no probe before it: the init command checks admin.conf itself;
        // the record after it reads the clock and the CA hash at once), and what it runs for the cluster (helm,
        // the CNI release and its values, the workers' labels and join token, the wait for Ready nodes, the
        // kubeconfig). Before the merges: 22 (a probe before init, the clock apart from the CA hash, the
        // kubelet restart).
        let cp = fresh["cp-1"] ?? [:]
        #expect(cp["connect"] == 1 && cp["preflight"] == 2 && cp["init"] == 2, "\(cp)")
        for step in ["prepare", "kubernetes-repo", "kubernetes-packages", "containerd", "images"] {
            #expect(cp[step] == 1, "\(step): \(cp)")
        }
        #expect(cp.values.reduce(0, +) == RoundTrips.freshControlPlane, "\(cp)")

        // A no-op apply: the facts, nothing else on any host but the control plane's look at the nodes.
        let skip = rig.log.all.count
        let (again, _) = try await rig.apply(plan, state: state)
        #expect(again.succeeded && !again.changed)
        let noop = RoundTrips.count(Array(rig.log.all.dropFirst(skip)))
        #expect(noop["worker-1"] == ["connect": 1] && noop["worker-2"] == ["connect": 1], "\(noop)")
        #expect(noop["cp-1"]?.values.reduce(0, +) == RoundTrips.noOpControlPlane, "\(noop["cp-1"] ?? [:])")
    }
}

extension ApplyEngineTests.RoundTrips {
    static let freshControlPlane = 19
    /// Facts, the nodes' readiness, the certificates' expiry (the fakes' facts report none).
    static let noOpControlPlane = 3
}
