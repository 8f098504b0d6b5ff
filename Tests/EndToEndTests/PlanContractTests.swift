import BootstrapCore
import BootstrapTestSupport
import Foundation
import Testing

/// `plan` and `apply` cannot disagree: every change apply refuses, `plan` refuses too, exit 1, with the same
/// reason. The built binary against a recorded state; no lab (apply refuses before contacting a host).
@Suite struct PlanContractTests {
    static let base = """
        apiVersion: bootstrap.k8s.lab/v1alpha1
        kind: Cluster
        metadata:
          name: contract
        spec:
          kubernetes:
            version: "1.34.1"
            controlPlaneEndpoint: "10.0.1.10:6443"
          network:
            cni: flannel
          hosts:
            - { name: cp-1, address: 10.0.1.10, role: control-plane }
            - { name: cp-2, address: 10.0.1.11, role: control-plane }
            - { name: cp-3, address: 10.0.1.12, role: control-plane }
            - { name: worker-1, address: 10.0.1.21, role: worker }

        """

    /// Each blocker: how the plan changes, and the words of its reason.
    static let cases: [(name: String, edit: @Sendable (String) -> String, reason: String)] = [
        ("cni", { $0.replacingOccurrences(of: "cni: flannel", with: "cni: calico") }, "CNI changed flannel → calico"),
        ("pod subnet", { $0.replacingOccurrences(of: "cni: flannel", with: "cni: flannel\n    podSubnet: 10.240.0.0/16") },
         "pod subnet changed 10.244.0.0/16 → 10.240.0.0/16"),
        ("service subnet", { $0.replacingOccurrences(of: "cni: flannel", with: "cni: flannel\n    serviceSubnet: 10.112.0.0/12") },
         "service subnet changed 10.96.0.0/12 → 10.112.0.0/12"),
        ("endpoint", { $0.replacingOccurrences(of: "\"10.0.1.10:6443\"", with: "\"10.0.1.99:6443\"") },
         "control-plane endpoint changed 10.0.1.10:6443 → 10.0.1.99:6443"),
        ("skipped minor", { $0.replacingOccurrences(of: "\"1.34.1\"", with: "\"1.36.1\"") },
         "Kubernetes 1.34.1 → 1.36.1 skips a minor release: kubeadm upgrades one minor at a time; apply 1.35.5 first, then 1.36.1"),
        ("version", { $0.replacingOccurrences(of: "\"1.34.1\"", with: "\"1.33.5\"") },
         "Kubernetes 1.34.1 → 1.33.5 is a downgrade: kubeadm cannot downgrade a cluster"),
        ("every control plane", { $0.replacingOccurrences(of: "10.0.1.1", with: "10.0.2.1") },
         "every control plane of the live cluster (cp-1, cp-2, cp-3) would be removed or replaced"),
        ("endpoint host removed", { $0.replacingOccurrences(of: "    - { name: cp-1, address: 10.0.1.10, role: control-plane }\n", with: "") },
         "cp-1 would be removed or replaced, but the cluster's endpoint 10.0.1.10:6443 is its own address"),
        ("quorum", {
            $0.replacingOccurrences(of: "    - { name: cp-2, address: 10.0.1.11, role: control-plane }\n", with: "")
                .replacingOccurrences(of: "    - { name: cp-3, address: 10.0.1.12, role: control-plane }\n", with: "")
        }, "removing 2 of 3 control planes would leave 1: etcd needs a majority (2) to keep quorum"),
    ]

    static func run(_ args: [String], in dir: String) throws -> Output {
        try runProgram(E2E.binary, args, cwd: dir, env: ["NO_COLOR": "1", "HOME": dir])
    }

    @Test(arguments: 0..<PlanContractTests.cases.count)
    func planRefusesWhatApplyRefusesWithTheSameReason(index: Int) async throws {
        let (name, edit, reason) = Self.cases[index]
        try await onOwnThread {
            let dir = NSTemporaryDirectory() + "bootstrap-contract-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // The state a complete apply of the base plan left.
            let loaded = PlanLoader.load(text: Self.base, path: "plan.yaml", baseDirectory: dir, fileExists: { _ in false })
            let plan = try #require(loaded.plan, "\(loaded.diagnostics)")
            let enc = JSONEncoder()
            enc.dateEncodingStrategy = .iso8601
            let state = ClusterState.converged(plan, at: Date(timeIntervalSince1970: 1_700_000_000))
            let statePath = (dir as NSString).appendingPathComponent("contract.state.json")
            try enc.encode(state).write(to: URL(fileURLWithPath: statePath))
            let planPath = (dir as NSString).appendingPathComponent("plan.yaml")
            let text = edit(Self.base)
            #expect(text != Self.base, "\(name): the edit changed nothing")
            try text.write(toFile: planPath, atomically: true, encoding: .utf8)

            let planned = try Self.run(["plan", "-f", planPath, "--state", statePath], in: dir)
            let applied = try Self.run(["apply", "-f", planPath, "--state", statePath, "--auto-approve"], in: dir)
            #expect(planned.status == 1, "\(name): \(planned.all)")
            #expect(applied.status == 1, "\(name): \(applied.all)")
            let planError = planned.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
            let applyError = applied.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
            #expect(planError.count == 1 && planError == applyError, "\(name):\n\(planned.stderr)\n\(applied.stderr)")
            #expect(planError.first?.contains(reason) == true, "\(name): \(planned.stderr)")
            // Refused before any host was contacted.
            #expect(!applied.stdout.contains("==> connect"), "\(applied.stdout)")
        }
    }

    /// `validate` checks the version against the state too, when there is one: 1.34 → 1.36 is refused with the
    /// line of the version and the release to apply first; a new cluster on 1.33 is refused, an existing one is not.
    @Test func validateChecksTheVersionAgainstTheState() async throws {
        try await onOwnThread {
            let dir = NSTemporaryDirectory() + "bootstrap-contract-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let planPath = (dir as NSString).appendingPathComponent("plan.yaml")
            let statePath = (dir as NSString).appendingPathComponent(".bootstrap/contract.state.json")
            func write(_ version: String) throws {
                try Self.base.replacingOccurrences(of: "\"1.34.1\"", with: "\"\(version)\"")
                    .write(toFile: planPath, atomically: true, encoding: .utf8)
            }
            // No state: a new cluster, which 1.33 cannot be.
            try write("1.33.5")
            let eol = try Self.run(["validate", "-f", planPath], in: dir)
            #expect(eol.status == 2, "\(eol.all)")
            #expect(eol.stderr.contains("plan.yaml:7:"), "\(eol.all)")
            #expect(eol.stderr.contains("error: spec.kubernetes.version: Kubernetes 1.33 is past its end of life"), "\(eol.all)")

            // A live 1.34.7 cluster (the state at the default path beside the plan).
            try write("1.34.7")
            let loaded = PlanLoader.load(text: try String(contentsOfFile: planPath, encoding: .utf8), path: "plan.yaml",
                                         baseDirectory: dir, fileExists: { _ in false })
            let plan = try #require(loaded.plan, "\(loaded.diagnostics)")
            let enc = JSONEncoder()
            enc.dateEncodingStrategy = .iso8601
            try FileManager.default.createDirectory(atPath: (statePath as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try enc.encode(ClusterState.converged(plan, at: Date(timeIntervalSince1970: 1_700_000_000)))
                .write(to: URL(fileURLWithPath: statePath))
            try write("1.36.1")
            let skip = try Self.run(["validate", "-f", planPath], in: dir)
            #expect(skip.status == 2, "\(skip.all)")
            #expect(skip.stderr.contains("plan.yaml:7:"), "\(skip.all)")
            #expect(skip.stderr.contains("skips a minor release: kubeadm upgrades one minor at a time; apply 1.35.5 first, then 1.36.1"),
                    "\(skip.all)")
            let json = try Self.run(["validate", "-f", planPath, "--json"], in: dir)
            #expect(json.status == 2 && json.stdout.contains("apply 1.35.5 first"), "\(json.all)")
            // One minor up is valid; so is the recorded version.
            try write("1.35.5")
            let next = try Self.run(["validate", "-f", planPath], in: dir)
            #expect(next.status == 0, "\(next.all)")
            try write("1.34.7")
            #expect(try Self.run(["validate", "-f", planPath], in: dir).status == 0)
        }
    }
}
