import ArgumentParser
import BootstrapCore
import BootstrapEngine
import BootstrapSSH
import Foundation

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what apply would change to make the cluster match the plan.",
        discussion: """
            Reads the plan and the recorded state and prints one block per change:
              +    create (a new host, add-on or manifest, or the cluster itself)
              ~    update in place (labels, taints, values, steps still to run)
              -    destroy (no longer in the plan)
              -/+  destroy and re-create (a host's address or role changed)
            followed by `Plan: N to add, N to change, N to destroy.`. Without --refresh nothing is contacted; \
            nothing is written, except the file given with --out.

            With --refresh, plan first connects to every host the state records (over SSH, in parallel, with \
            the same settings as apply), reads its facts (one read-only command) and shows drift the way apply \
            does: swap on again, a package removed or at another version, a replaced machine. The steps the \
            drift undoes become changes. It also prints each control plane's certificate expiry (kubeadm certs \
            check-expiration); certificates within spec.certificates.renewBefore (default 30d) become \
            "renew certificates (expire in N days)", expired ones an error saying what to run. Nothing on a \
            host changes and the state is not written (it is not locked either). A host that cannot be reached is reported and the command exits 1. Refresh is off \
            by default: plan then works offline, before the hosts exist; apply always refreshes first.

            With spec.provider.ec2, the running instances its selectors choose are found first \
            (DescribeInstances, with the AWS credentials chain) and added to the hosts, listed on stderr; a \
            security-group rule they lack between them (or from operatorCidrs: SSH, the API, the add-ons' \
            NodePorts) is an error, or with manageSecurityGroups a change (+ sg-0abc: allow tcp/6443 from \
            sg-0abc) that apply makes once approved; --out carries those rules and --json lists them \
            (securityGroupRules).

            The plan is what apply runs: --out saves its changes and its actions, and --json lists the actions. \
            Changes apply refuses are refused here too, shown as errors with apply's reason, exit 1: a new pod \
            subnet, service subnet, CNI, control-plane endpoint or Kubernetes version on a live cluster; removing \
            or replacing every control plane or the one that ran kubeadm init, or enough of them to lose etcd \
            quorum; that host no longer listed first.

            Examples:
              bootstrap plan -f Plans/lab.yaml
              terraform output -raw cluster_plan | bootstrap plan -f -
              bootstrap plan -f Plans/ec2-ha.yaml --out ha.plan.json --detailed-exitcode
              bootstrap plan -f Plans/lab.yaml --refresh
            """)

    @OptionGroup var planFile: PlanFileOption
    @OptionGroup var stateOption: StateOption

    @Flag(name: .long, help: "Print the changes as a versioned JSON document instead of text.")
    var json = false

    @Flag(name: .long, help: "Exit 0 when there are no changes, 2 when there are, 1 on any error (an invalid plan too).")
    var detailedExitcode = false

    @Option(name: .long, help: ArgumentHelp("Save the plan (its changes and actions, with the state's serial and lineage) for `apply FILE`.",
                                            valueName: "FILE"), completion: .file())
    var out: String?

    @Flag(name: .long, help: "No colour, even on a terminal.")
    var noColor = false

    @Flag(inversion: .prefixedNo,
          help: "Read the recorded hosts' facts over SSH first (read-only) and show drift as changes.")
    var refresh = false

    @Option(name: .long, help: ArgumentHelp("With --refresh: how many hosts to connect to at once (default: the plan's spec.parallelism).",
                                            valueName: "N"))
    var parallelism: Int?

    @Flag(name: .long, help: "With --refresh: allow spec.ssh.hostKeyPolicy: off (host keys are not checked; a warning is printed).")
    var insecureIgnoreHostKeys = false

    func validate() throws {
        if let parallelism, parallelism < 1 { throw ValidationError("--parallelism must be at least 1") }
    }

    func run() async throws {
        let hasChanges: Bool
        do {
            hasChanges = try await plan()
        } catch let code as ExitCode where detailedExitcode && code == Exit.badInput {
            // With --detailed-exitcode, 2 means "changes"; every error is 1.
            throw Exit.failure
        }
        if detailedExitcode && hasChanges { throw ExitCode(2) }
    }

    /// Prints the plan; true when there are changes.
    private func plan() async throws -> Bool {
        let (loaded, _) = try await PlanInput.load(planFile.file)
        let objects = try await PlanInput.objects(loaded)
        let store = StateStore(path: PlanInput.statePath(stateOption.state, plan: loaded))
        var state = try await PlanInput.loadState(store, plan: loaded)
        // Hosts from spec.provider.ec2 join the plan's own (the saved plan carries them).
        let (plan, rules) = try await ProviderHosts.resolveWithRules(loaded, state: state)
        let color = useColor(noColor: noColor)
        var report: RefreshReport?
        let recordedState = state
        if refresh, let recorded = state {
            let result = try await Self.refresh(plan: plan, state: recorded, parallelism: parallelism,
                                                allowInsecure: insecureIgnoreHostKeys)
            state = result.state
            let certificates = result.refreshed.reduce(into: [String: CertificateExpiry]()) { out, name in
                if let c = result.state.hosts[name]?.facts?.certificates { out[name] = c }
            }
            report = RefreshReport(refreshed: result.refreshed, drift: result.drift,
                                   failures: result.failures.map { RefreshReport.Failure(host: $0.host, reason: $0.reason) },
                                   certificates: certificates.isEmpty ? nil : certificates)
        }
        // The same plan apply makes and runs (the local kubeconfig counts: apply fetches it again when missing).
        let kubeconfig = RunSupport.kubeconfigPath(for: plan)
        let kubeconfigMissing = await !PlanInput.files.run { FileManager.default.fileExists(atPath: kubeconfig) }
        let applyPlan = ApplyPlan.make(plan: plan, state: state, objects: objects, drift: report?.drift ?? [],
                                       kubeconfigMissing: kubeconfigMissing,
                                       kubeconfigStale: Certificates.adminRenewed(recorded: recordedState, refreshed: state))
        let changes = applyPlan.changes

        if json {
            var doc = PlanRenderer.document(applyPlan, state: state, refresh: report)
            doc.securityGroupRules = rules.isEmpty ? nil : rules
            print(PlanRenderer.json(doc), terminator: "")
        } else {
            if let report { print(Self.refreshText(report, color: color), terminator: "") }
            print(ProviderHosts.rulesText(rules), terminator: "")
            print(PlanRenderer.text(changes, plan: plan, state: state, color: color), terminator: "")
        }
        if let failures = report?.failures, !failures.isEmpty {
            let hosts = failures.count == 1 ? "1 host" : "\(failures.count) hosts"
            printError("error: could not refresh \(hosts); the plan uses what the state recorded for "
                       + (failures.count == 1 ? "it" : "them") + ":\n"
                       + failures.map { "  \($0.host): \($0.reason)" }.joined(separator: "\n"))
            throw Exit.failure
        }
        if let out {
            var saved = SavedPlan(plan: plan, state: state, applyPlan: applyPlan)
            saved.securityGroupRules = rules.isEmpty ? nil : rules
            try await PlanInput.writePrivateFile(saved.encoded(), to: out)
            if !json { print("\nSaved the plan to \(out); `bootstrap apply \(out)` will carry out exactly these changes.") }
        }
        if let why = applyPlan.refusal {
            // The words apply refuses with.
            printError("error: \(why)")
            throw Exit.failure
        }
        return !changes.changes.isEmpty || !rules.isEmpty
    }

    /// Connects to the recorded hosts and reads their facts; the state comes back refreshed in memory.
    static func refresh(plan: ClusterPlan, state: ClusterState, parallelism: Int?, allowInsecure: Bool) async throws
        -> PlanRefresh.Result
    {
        let resolve = try await RunSupport.resolver(for: plan, allowInsecure: allowInsecure)
        let refresher = PlanRefresh(plan: plan, transport: RunSupport.sshTransport(), resolve: resolve,
                                    parallelism: parallelism ?? plan.spec.parallelism)
        return await refresher.run(state: state)
    }

    /// `Refreshed N hosts.` and one line per drift, as apply prints them.
    static func refreshText(_ r: RefreshReport, color: Bool) -> String {
        let n = r.refreshed.count
        var out = "Refreshed \(n) host\(n == 1 ? "" : "s") over SSH"
        out += r.drift.isEmpty ? (n == 0 ? ".\n" : ": no drift.\n") : ":\n"
        for d in r.drift { out += Paint.yellow("  ~ \(d.host): drift: \(d.message)", color) + "\n" }
        for f in r.failures { out += Paint.red("  ✗ \(f.host): not refreshed: \(f.reason)", color) + "\n" }
        for (host, c) in (r.certificates ?? [:]).sorted(by: { $0.key < $1.key }) { out += "  \(host): \(c.summary)\n" }
        return out + "\n"
    }
}
