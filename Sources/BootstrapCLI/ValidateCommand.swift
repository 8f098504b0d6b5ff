import ArgumentParser
import BootstrapCore
import Foundation

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a plan and report every problem at once.",
        discussion: """
            Each problem is printed as FILE:LINE:COLUMN: error|warning: FIELD.PATH: what is wrong (expected …); \
            past the first 100, they are counted. Errors exit 2; warnings are printed but do not fail. Nothing is contacted. \
            When the cluster's state file exists (--state, or .bootstrap/NAME.state.json beside the plan), the \
            Kubernetes version is checked against the recorded one as kubeadm upgrades: one minor at a time, no \
            downgrade; a new cluster only on a maintained release. \
            --show-defaults prints the plan with every default filled in, as YAML, then (as comments) each \
            host's SSH settings and where each came from: the plan, ~/.ssh/config (file:line) or the default.
            """)

    @OptionGroup var planFile: PlanFileOption
    @OptionGroup var stateOption: StateOption

    @Flag(name: .long, help: "Print the resolved plan, defaults included, as YAML.")
    var showDefaults = false

    @Flag(name: .long, help: "Print the diagnostics as JSON on stdout.")
    var json = false

    func run() async throws {
        if json {
            let r = try await PlanInput.loadResultAgainstState(planFile.file, statePath: stateOption.state)
            struct Report: Encodable {
                var valid: Bool
                var diagnostics: [Diagnostic]
                /// Past the first `PlanLoader.reportLimit`, diagnostics are counted only.
                var omittedErrors: Int
                var omittedWarnings: Int
            }
            print(PlanRenderer.json(Report(valid: r.plan != nil, diagnostics: r.diagnostics,
                                           omittedErrors: r.omittedErrors, omittedWarnings: r.omittedWarnings)),
                  terminator: "")
            if r.plan == nil { throw Exit.badInput }
            return
        }
        let (plan, diagnostics) = try await PlanInput.loadAgainstState(planFile.file, statePath: stateOption.state)
        let objects = try await PlanInput.objects(plan)
        if showDefaults {
            print(PlanRenderer.yaml(plan), terminator: "")
            // How each host will be reached, and where each SSH value comes from (plan, ~/.ssh/config, default).
            let config = await RunSupport.sshConfig()
            var text = "# SSH, per host: what the plan writes wins, then ~/.ssh/config, then the defaults.\n"
            for h in plan.spec.hosts {
                text += SSHSettings.resolve(plan: plan, host: h, config: config).describe(host: h.name)
            }
            print(text, terminator: "")
            return
        }
        let w = diagnostics.warnings.count
        print("\(PlanInput.label(for: planFile.file)): valid: cluster \(plan.name), Kubernetes \(plan.spec.kubernetes.version), "
              + "\(plan.controlPlanes.count) control plane\(plan.controlPlanes.count == 1 ? "" : "s"), "
              + "\(plan.workers.count) worker\(plan.workers.count == 1 ? "" : "s"), "
              + "\(Releases.desired(for: plan).count) Helm releases, \(objects.count) objects to apply"
              + (w > 0 ? " (\(w) warning\(w == 1 ? "" : "s"))" : ""))
    }
}
