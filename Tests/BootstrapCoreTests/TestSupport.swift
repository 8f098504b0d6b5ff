import Foundation
import Testing
import Yams
@testable import BootstrapCore

/// The repository root, found from this file's path.
let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A valid plan to start from; tests change one thing at a time.
let basePlanYAML = """
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

func load(_ yaml: String, files: Set<String> = [], base: String = "/plans") -> PlanLoadResult {
    PlanLoader.load(text: yaml, path: "plan.yaml", baseDirectory: base, fileExists: { files.contains($0) })
}

/// Loads a plan that must be valid.
func plan(_ yaml: String, files: Set<String> = []) throws -> ClusterPlan {
    let r = load(yaml, files: files)
    guard let p = r.plan else {
        throw PlanTestError(text: r.diagnostics.map { $0.rendered(file: "plan.yaml") }.joined(separator: "\n"))
    }
    return p
}

struct PlanTestError: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}

/// Replaces `old` in the base plan by `new` (which must occur exactly once).
func edited(_ old: String, _ new: String) -> String { edited(basePlanYAML, old, new) }

func edited(_ yaml: String, _ old: String, _ new: String) -> String {
    precondition(yaml.components(separatedBy: old).count == 2, "\(old) must occur once")
    return yaml.replacingOccurrences(of: old, with: new)
}

func errors(_ r: PlanLoadResult) -> [Diagnostic] { r.diagnostics.errors }

func has(_ r: PlanLoadResult, _ severity: Diagnostic.Severity = .error, path: String, containing text: String) -> Bool {
    r.diagnostics.contains { $0.severity == severity && $0.path == path && $0.message.contains(text) }
}

/// A state in which everything `plan` asks for has been done.
func appliedState(_ plan: ClusterPlan, at date: Date = Date(timeIntervalSince1970: 1_700_000_000),
                  objects: [KubeObject] = []) -> ClusterState {
    var s = ClusterState.converged(plan, objects: objects, at: date, lineage: "11111111-2222-3333-4444-555555555555",
                                   toolVersion: "0.1.0")
    s.serial = 7
    return s
}

/// A plan that turns on every add-on and every generated security object, and applies the example app.
let everythingPlanYAML = basePlanYAML + """

      addons:
        metricsServer: { enabled: true }
        monitoring: { enabled: true }
        logging: { enabled: true }
        tracing: { enabled: true }
        dashboard: { enabled: true }
      namespaces:
        - name: team-a
          defaultDeny: true
          limitRange: true
          access:
            - { role: view, users: [alice], groups: [auditors] }
            - { role: edit, users: [bob, carol] }
            - { role: admin, groups: [team-a-leads] }
        - name: team-b
          limitRange:
            defaultRequest: { cpu: 50m, memory: 64Mi }
            default: { cpu: "1", memory: 1Gi }
      manifests: [apps/my-app.yaml]
    """

func everythingPlan(cni: ClusterPlan.CNI = .flannel) throws -> ClusterPlan {
    let yaml = cni == .flannel ? everythingPlanYAML
        : edited(everythingPlanYAML, "cni: flannel", "cni: calico\n    calico: { encapsulation: VXLAN }")
    return try plan(yaml, files: ["/plans/apps/my-app.yaml"])
}

/// Made-up values for every secret the releases refer to.
func sampleSecrets(_ releases: [HelmRelease]) -> [String: Secret] {
    Dictionary(releases.flatMap(\.secrets).map { ($0, Secret("sample-\($0)")) }, uniquingKeysWith: { a, _ in a })
}

/// The values file of `r` as Helm reads it back.
func parsedValuesFile(_ r: HelmRelease, secrets: [String: Secret]) throws -> JSONValue {
    let text = HelmRecipes.valuesFile(r, secrets: secrets)
    let node = try #require(try Yams.compose(yaml: text), "values file of \(r.key) is empty")
    return NodeReader.json(node)
}
