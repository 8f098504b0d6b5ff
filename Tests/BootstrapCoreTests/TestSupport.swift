import Foundation
import Testing
import Yams
import BootstrapTestSupport
@testable import BootstrapCore

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
