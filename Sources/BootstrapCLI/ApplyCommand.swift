import ArgumentParser
import BootstrapCore
import BootstrapEngine
import BootstrapSSH
import Foundation

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Make the cluster match the plan: prepare hosts, kubeadm init/join, CNI and add-ons, manifests.",
        discussion: """
            Connects to every host over SSH (one session per host for the whole run; more to the first control \
            plane for the Helm releases: one to count a release's pods while Helm waits, and one for each \
            release, at most 4 or --parallelism, opened when needed), gathers facts and shows \
            drift, runs preflight checks on all hosts (any error stops the run with nothing changed), then shows \
            the plan as the hosts are now (the steps drift undoes included) and asks before anything changes \
            (without a terminal, --auto-approve is required; a saved plan runs exactly its saved actions and is not \
            asked about unless the refresh found more to do). Then it runs the plan's actions, and nothing else: prepare, kubernetes-repo, kubernetes-packages (containerd and the \
            Kubernetes packages in one transaction), containerd (configured), images (kubeadm's and the CNI's, pulled ahead), init on the \
            first control plane, join-control-plane one at a time, join-worker in parallel, node-config; \
            Helm on the first control plane and the CNI release; it fetches the admin kubeconfig to \
            NAME.kubeconfig beside the plan (0600) and waits until every node is Ready. Then the add-on \
            releases, in parallel, each on its own session with its own --wait (helm upgrade --install --wait; \
            disabled ones are uninstalled), and the \
            manifests and security objects (server-side apply; objects gone from the plan are deleted).

            The state is written after every finished step, so running apply again after a failure, a crash \
            or Ctrl-C continues where it stopped; kubeadm init and join never run twice on a host. Ctrl-C stops \
            starting new steps, gives running ones 10 seconds to finish, then stops their remote commands, \
            writes the state and exits 130. Each kind of step has a time limit (spec.timeouts: packages, init, \
            join, helm, waitReady). Mutating remote commands run under a host-wide lock of their kind (a Helm \
            release: a lock of its own, so releases do not wait for each other) with their output in a file, so \
            a killed run's command finishes on its own and the next run waits for it (and names it when it holds \
            the lock too long).

            While it waits for nodes to be Ready or for a Helm release's pods, it says every 10 seconds what it \
            still waits for (a release: how many of its pods are Ready). On a terminal in colour each running \
            step has a live status line, redrawn in place; otherwise (--no-color, NO_COLOR, a pipe) every line is \
            plain. --json prints one JSON event per line instead (see the README).

            A changed spec.kubernetes.version is an upgrade (one minor at a time, or a patch release; never a \
            downgrade): an etcd snapshot on the first control plane, kubeadm upgrade apply there, kubeadm \
            upgrade node on the other control planes one at a time, then the workers in batches of \
            spec.upgrade.maxUnavailable; each node is drained (spec.upgrade.drainTimeout), gets the new \
            kubelet and kubectl, is restarted, uncordoned and Ready on the new version before the next. A drain \
            that a PodDisruptionBudget blocks stops the run, names the pods and uncordons the node; the next \
            apply resumes where it stopped.

            Remote output goes to .bootstrap/logs/HOST.log beside the state. Secrets are redacted everywhere.

            Examples:
              bootstrap apply -f Plans/lab.yaml
              bootstrap apply -f Plans/lab.yaml --auto-approve --json
              bootstrap plan -f Plans/lab.yaml --out lab.plan.json
              bootstrap apply lab.plan.json
            """)

    @Option(name: [.customShort("f"), .customLong("file")],
            help: ArgumentHelp("The cluster plan, YAML or JSON; `-` reads it from stdin.", valueName: "FILE"), completion: .file())
    var file: String?

    @Argument(help: ArgumentHelp("A plan saved with `bootstrap plan --out`; refused if the state changed since.",
                                 valueName: "SAVED-PLAN"), completion: .file())
    var savedPlan: String?

    @OptionGroup var stateOption: StateOption
    @OptionGroup var run: RunOptions

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for every node to be Ready (default: the plan's spec.timeouts.waitReady).",
                                            valueName: "SECONDS"))
    var readyTimeout: Int?

    func validate() throws {
        if file == nil && savedPlan == nil {
            throw ValidationError("give the plan: -f FILE, or a SAVED-PLAN from `bootstrap plan --out`")
        }
        if file != nil && savedPlan != nil {
            throw ValidationError("give either -f FILE (a plan) or SAVED-PLAN (from `bootstrap plan --out`), not both")
        }
    }

    func run() async throws {
        let loaded: ClusterPlan
        var saved: SavedPlan?
        if let savedPlan {
            guard let data = await PlanInput.contents(savedPlan) else {
                printError("error: saved plan \(savedPlan) cannot be read")
                throw Exit.badInput
            }
            do {
                saved = try SavedPlan.decode(data)
            } catch {
                printError("error: \(savedPlan): \(error)")
                throw Exit.badInput
            }
            loaded = saved!.plan
        } else {
            loaded = try await PlanInput.load(file!).0
        }
        let (store, existing, state) = try await RunSupport.openState(plan: loaded, statePath: stateOption.state,
                                                                      lockTimeout: run.lockTimeout)
        defer { store.unlock() }
        // Hosts from spec.provider.ec2 join the plan's own; a saved plan has them and its rules already, as approved.
        let (plan, rules) = saved == nil ? try await ProviderHosts.resolveWithRules(loaded, state: existing)
                                         : (loaded, saved?.securityGroupRules ?? [])
        let resolve = try await RunSupport.resolver(for: plan, allowInsecure: run.insecureIgnoreHostKeys)

        if let saved, let why = saved.staleness(against: existing) {
            printError("error: the saved plan is stale: \(why)")
            throw Exit.failure
        }
        let objects = try await PlanInput.objects(plan)
        let color = useColor(noColor: run.noColor)
        // Changes no refresh can make acceptable (a new pod subnet, …) stop the run before any host is
        // contacted, shown as `plan` shows them (the engine refuses them with the same reasons).
        let offline = ApplyPlan.make(plan: plan, state: existing, objects: objects)
        if !offline.blockers.isEmpty {
            if !run.json { print(PlanRenderer.text(offline.changes, plan: plan, state: existing, color: color), terminator: "") }
            printError("error: \(offline.refusal ?? "")")
            throw Exit.failure
        }

        let (printer, flag, signalSource) = RunSupport.startRun(statePath: store.path, json: run.json, color: color)
        defer { signalSource.cancel() }

        // What will run is known only after the refresh (drift adds steps): shown and asked for then.
        let json = run.json
        let autoApprove = run.autoApprove
        let savedPlan = saved?.applyPlan
        let approve: @Sendable (Refreshed) async throws -> Void = { refreshed in
            await printer.flush()  // the refresh's lines first
            let changes = refreshed.plan.changes
            if !json {
                print("")
                print(ProviderHosts.rulesText(rules), terminator: "")
                print(PlanRenderer.text(changes, plan: plan, state: refreshed.state, color: color), terminator: "")
                fflush(nil)
            }
            if !changes.blocking.isEmpty { throw Exit.failure }
            if changes.changes.isEmpty && rules.isEmpty { return }
            if let savedPlan {
                // A saved plan was approved as it was shown: run without asking when the refreshed plan has
                // exactly its changes and actions. Anything the refresh added was not approved: ask.
                if savedPlan.changes.changes != changes.changes || savedPlan.actions != refreshed.plan.actions {
                    try await Approval.confirm("The hosts have changed since the plan was saved (above: what will run now). "
                                               + "Do you want to apply these changes to cluster \(plan.name)?",
                                               autoApprove: autoApprove)
                }
            } else {
                try await Approval.confirm("Do you want to apply these changes to cluster \(plan.name)?",
                                           autoApprove: autoApprove)
            }
            // Approved: the security-group rules first, so the joins find their ports open.
            try await ProviderHosts.addRules(rules, plan: plan)
        }

        let engine = ApplyEngine(
            plan: plan, objects: objects, runState: RunState(state: state, store: store),
            transport: RunSupport.sshTransport(notice: { printer.note($0) }), resolve: resolve,
            options: ApplyOptions(parallelism: run.parallelism ?? plan.spec.parallelism,
                                  kubeconfigPath: RunSupport.kubeconfigPath(for: plan),
                                  readyTimeout: .seconds(readyTimeout ?? plan.spec.timeouts.waitReady),
                                  cancellation: flag, approve: approve),
            events: printer.sink)
        let report: RunReport
        do {
            report = try await engine.run()
        } catch let e as EngineError {
            printer.handle(.message(Paint.red("error: \(e)", color)))
            await printer.flush()
            throw Exit.failure
        } catch let e as StateError {
            await printer.flush()
            printError("error: \(e)")
            throw Exit.failure
        } catch {
            await printer.flush()  // refused at the approval, or another exit
            throw error
        }
        printer.summary(report)
        if report.succeeded && !run.json {
            printer.handle(.message("Kubeconfig: \(RunSupport.kubeconfigPath(for: plan))"))
        }
        await printer.flush()
        if await printer.failed { throw Exit.failure }
        let code = RunSupport.exitCode(for: report)
        if code != .success { throw code }
    }
}
