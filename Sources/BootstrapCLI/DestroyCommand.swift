import ArgumentParser
import BootstrapCore
import BootstrapEC2
import BootstrapEngine
import BootstrapSSH
import Foundation

struct DestroyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destroy",
        abstract: "Drain and reset every node of the cluster and empty the state.",
        discussion: """
            Workers first (in parallel), then the joined control planes one at a time, then the first control \
            plane: each node is drained while the API answers, then `kubeadm reset -f` runs and the CNI \
            configuration, interfaces and iptables rules are cleaned, then the Node is deleted (the kubeadm \
            order: deleted before the reset, its kubelet would register it again). The local kubeconfig is \
            removed. Ctrl-C stops starting hosts and stops running resets after 10 seconds. \
            With --purge the Kubernetes packages and repository are removed as well.

            A host that cannot be reached is reported and kept in the state, so a later destroy can finish. \
            The state file stays (empty, same lineage) and its previous copy is kept as .backup.

            Examples:
              bootstrap destroy -f Plans/lab.yaml
              bootstrap destroy -f Plans/lab.yaml --auto-approve --purge
            """)

    @OptionGroup var planFile: PlanFileOption
    @OptionGroup var stateOption: StateOption
    @OptionGroup var run: RunOptions

    @Flag(name: .long, help: "Also remove the Kubernetes packages and package repository from the hosts.")
    var purge = false

    func run() async throws {
        let plan = try await PlanInput.load(planFile.file).0
        let resolve = try await RunSupport.resolver(for: plan, allowInsecure: run.insecureIgnoreHostKeys)
        let (store, existing, state) = try await RunSupport.openState(plan: plan, statePath: stateOption.state,
                                                                      lockTimeout: run.lockTimeout)
        defer { store.unlock() }
        let color = useColor(noColor: run.noColor)
        guard let existing, !existing.hosts.isEmpty else {
            if !run.json { print("Nothing to destroy: the state records no hosts for cluster \(plan.name).") }
            return
        }
        if !run.json {
            print("bootstrap will destroy cluster \(plan.name):")
            for name in Planner.workersFirst(Array(existing.hosts.keys), role: { existing.hosts[$0]?.role ?? .worker }) {
                guard let h = existing.hosts[name] else { continue }
                print(Paint.red("  - \(name) (\(h.address), \(h.role.rawValue)): drain, delete node, kubeadm reset\(purge ? ", purge packages" : "")", color))
            }
            print("\nPlan: 0 to add, 0 to change, \(existing.hosts.count) to destroy.")
        }
        try await Approval.confirm("Do you really want to destroy cluster \(plan.name)? This cannot be undone.",
                               autoApprove: run.autoApprove)

        let (printer, flag, signalSource) = RunSupport.startRun(statePath: store.path, json: run.json, color: color)
        defer { signalSource.cancel() }
        let engine = DestroyEngine(
            runState: RunState(state: state, store: store),
            transport: RunSupport.sshTransport(notice: { printer.note($0) }), resolve: resolve,
            options: DestroyOptions(parallelism: run.parallelism ?? plan.spec.parallelism, purge: purge,
                                    kubeconfigPath: RunSupport.kubeconfigPath(for: plan), cancellation: flag,
                                    limits: plan.spec.timeouts),
            events: printer.sink)
        let report: RunReport
        do {
            report = try await engine.run()
        } catch let e as StateError {
            await printer.flush()
            printError("error: \(e)")
            throw Exit.failure
        }
        printer.summary(report)
        await printer.flush()
        if await printer.failed { throw Exit.failure }
        if report.succeeded, let ec2 = plan.spec.provider?.ec2, ec2.manageSecurityGroups {
            // The cluster is gone: the security-group rules bootstrap added for it go too (only those).
            do {
                let removed = try await EC2HostDiscoverer.cli.revokeOwnRules(
                    ec2, instanceIds: existing.hosts.values.compactMap(\.instanceId).sorted(), cluster: plan.name)
                if !run.json && !removed.isEmpty {
                    print("Removed \(removed.count) security-group rule\(removed.count == 1 ? "" : "s") bootstrap had added:")
                    for r in removed { print("  - \(r)") }
                }
            } catch {
                printError("error: removing the security-group rules bootstrap added: \(error)")
                throw Exit.failure
            }
        }
        let code = RunSupport.exitCode(for: report)
        if code != .success { throw code }
    }
}
