import BootstrapCore
import Foundation

// Plan fixtures shared by the Core and CLI test targets.

/// The repository root, found from this file's path.
public let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A valid plan to start from; tests change one thing at a time.
public let basePlanYAML = """
    apiVersion: bootstrap.k8s.lab/v1alpha1
    kind: Cluster
    metadata:
      name: demo
    spec:
      kubernetes:
        version: "1.34.1"
      network:
        cni: flannel
      hosts:
        - name: cp-1
          address: 10.0.1.10
          role: control-plane
        - name: worker-1
          address: 10.0.1.21
          role: worker
    """

public struct PlanTestError: Error, CustomStringConvertible {
    public var text: String
    public var description: String { text }
}

/// Loads `yaml` as `/plans/plan.yaml`; `files` are the paths that exist.
public func load(_ yaml: String, files: Set<String> = [], base: String = "/plans") -> PlanLoadResult {
    PlanLoader.load(text: yaml, path: "plan.yaml", baseDirectory: base, fileExists: { files.contains($0) })
}

/// Loads a plan that must be valid.
public func plan(_ yaml: String, files: Set<String> = []) throws -> ClusterPlan {
    let r = load(yaml, files: files)
    guard let p = r.plan else {
        throw PlanTestError(text: r.diagnostics.map { $0.rendered(file: "plan.yaml") }.joined(separator: "\n"))
    }
    return p
}

/// A state in which everything `plan` asks for has been done.
public func appliedState(_ plan: ClusterPlan, at date: Date = Date(timeIntervalSince1970: 1_700_000_000),
                         objects: [KubeObject] = []) -> ClusterState {
    var s = ClusterState.converged(plan, objects: objects, at: date, lineage: "11111111-2222-3333-4444-555555555555",
                                   toolVersion: "0.1.0")
    s.serial = 7
    return s
}
