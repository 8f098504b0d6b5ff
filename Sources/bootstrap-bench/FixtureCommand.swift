import ArgumentParser
import BootstrapCore
import BootstrapEngine
import Foundation

/// Writes a large plan and a state in which every step of it is done, for `scripts/bench`.
struct FixtureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fixture",
        abstract: "Write a large plan and its matching state (for scripts/bench).")

    @Option(help: "Number of hosts (3 control planes, the rest workers).")
    var hosts = 5000

    @Option(help: ArgumentHelp("Directory to write plan.yaml and .bootstrap/bench.state.json into.", valueName: "DIR"))
    var dir: String

    func run() async throws {
        guard hosts >= 3, hosts <= 60000 else { throw ValidationError("--hosts must be 3…60000") }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var yaml = """
            apiVersion: \(ClusterPlan.apiVersion)
            kind: Cluster
            metadata:
              name: bench
            spec:
              kubernetes:
                version: \(KubernetesReleases.latest)
                controlPlaneEndpoint: api.bench.internal:6443
              network:
                cni: flannel
                podSubnet: 10.0.0.0/8
                serviceSubnet: 172.31.0.0/16
              ssh:
                user: ubuntu
                keyPath: ~/.ssh/id_ed25519
              hosts:

            """
        for i in 0..<hosts {
            let role = i < 3 ? "control-plane" : "worker"
            let name = i < 3 ? "cp-\(i + 1)" : "worker-\(i - 2)"
            yaml += "    - name: \(name)\n      address: 172.16.\(i / 250).\(i % 250 + 1)\n      role: \(role)\n"
            if i % 10 == 0 { yaml += "      labels:\n        tier: batch\n" }
        }
        let planPath = dir + "/plan.yaml"
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: planPath))
        let result = PlanLoader.load(text: yaml, path: planPath, baseDirectory: dir, fileExists: { _ in false })
        guard let plan = result.plan else {
            FileHandle.standardError.write(Data((result.rendered(file: planPath) + "\n").utf8))
            throw ExitCode.failure
        }
        let state = ClusterState.converged(plan, at: Date())
        let store = StateStore(path: StateStore.defaultPath(for: plan))
        try await store.lock(command: "bootstrap-bench fixture")
        defer { store.unlock() }
        for old in [store.path, store.backupPath] { try? FileManager.default.removeItem(atPath: old) }
        _ = try await store.load(expectName: nil)
        try await store.write(state)
        print("wrote \(planPath) (\(hosts) hosts) and \(store.path)")
    }
}
