import ArgumentParser
import BootstrapCore
import BootstrapEngine
import Foundation

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what apply would change to make the cluster match the plan.",
        discussion: """
            Reads the plan and the recorded state and prints one block per change:
              +    create (a new host, add-on or manifest, or the cluster itself)
              ~    update in place (labels, taints, values, steps still to run)
              -    destroy (no longer in the plan)
              -/+  destroy and re-create (a host's address or role changed)
            followed by `Plan: N to add, N to change, N to destroy.`. Nothing is contacted or written, except \
            the file given with --out.

            Changes a live cluster cannot take (a new pod subnet, service subnet or CNI) are shown as errors \
            and the command exits 1.

            Examples:
              bootstrap plan -f Plans/lab.yaml
              terraform output -raw cluster_plan | bootstrap plan -f -
              bootstrap plan -f Plans/ec2-ha.yaml --out ha.plan.json --detailed-exitcode
            """)

    @OptionGroup var planFile: PlanFileOption
    @OptionGroup var stateOption: StateOption

    @Flag(name: .long, help: "Print the changes as a versioned JSON document instead of text.")
    var json = false

    @Flag(name: .long, help: "Exit 0 when there are no changes, 2 when there are, 1 on any error (an invalid plan too).")
    var detailedExitcode = false

    @Option(name: .long, help: ArgumentHelp("Save the plan (with the state's serial and lineage) for `apply FILE`.",
                                            valueName: "FILE"))
    var out: String?

    @Flag(name: .long, help: "No colour, even on a terminal.")
    var noColor = false

    func run() throws {
        let hasChanges: Bool
        do {
            hasChanges = try plan()
        } catch let code as ExitCode where detailedExitcode && code == Exit.badInput {
            // With --detailed-exitcode, 2 means "changes"; every error is 1.
            throw Exit.failure
        }
        if detailedExitcode && hasChanges { throw ExitCode(2) }
    }

    /// Prints the plan; true when there are changes.
    private func plan() throws -> Bool {
        let (plan, _) = try PlanInput.load(planFile.file)
        let objects = try PlanInput.objects(plan)
        let store = StateStore(path: PlanInput.statePath(stateOption.state, plan: plan))
        let state = try PlanInput.loadState(store, plan: plan)
        let changes = ChangeSet.diff(plan: plan, state: state, objects: objects)

        if json {
            print(PlanRenderer.json(PlanRenderer.document(changes, state: state)), terminator: "")
        } else {
            print(PlanRenderer.text(changes, plan: plan, state: state, color: useColor(noColor: noColor)),
                  terminator: "")
        }
        if let out {
            let saved = SavedPlan(plan: plan, state: state, changes: changes)
            try writePrivateFile(Data(PlanRenderer.json(saved).utf8), to: out)
            if !json { print("\nSaved the plan to \(out); `bootstrap apply \(out)` will carry out exactly these changes.") }
        }
        if !changes.blocking.isEmpty { throw Exit.failure }
        return !changes.changes.isEmpty
    }
}
