import ArgumentParser
import BootstrapCore
import BootstrapEngine
import Foundation

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore the cluster's etcd from a backup archive (disaster recovery).",
        discussion: """
            Checks the archive first (its SHA-256 and format; a backup of this cluster — the state's lineage — \
            and of the plan's Kubernetes minor), then connects to every host of the plan (all must answer) and \
            checks the snapshot with `etcdutl snapshot status` on the first control plane; any refusal: exit 2 \
            (bad archive) or 1, and nothing of the cluster changed. It shows what will happen and asks (without a \
            terminal, --auto-approve is required). Then kubeadm's procedure: the static pods and etcd of every \
            control plane stopped (manifests moved aside), the snapshot restored on the first one into a fresh \
            data directory (the old one kept beside it) with the backup's PKI, a one-member etcd and the API \
            server started, the other control planes re-joined one at a time (their etcd data wiped, added as \
            members), the workers' kubelets restarted, every node Ready. The state records the restore and \
            forgets releases and applied objects the snapshot does not hold, so `plan` shows them again. \
            Everything written to the cluster after the snapshot was taken is lost.
            """)

    @Option(name: [.customShort("f"), .customLong("file")],
            help: ArgumentHelp("The cluster plan.", valueName: "FILE"), completion: .file())
    var file: String

    @Option(name: .long, help: ArgumentHelp("The backup archive (`bootstrap backup`).", valueName: "FILE"),
            completion: .file(extensions: ["bootstrap-backup"]))
    var from: String

    @Flag(name: .long, help: "Do not ask for confirmation (required when stdin is not a terminal).")
    var autoApprove = false

    @OptionGroup var stateOption: StateOption

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for another command's state lock.", valueName: "SECONDS"))
    var lockTimeout: Int = 0

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for every node to be Ready after the restore.", valueName: "SECONDS"))
    var readyTimeout: Int = 300

    @Flag(name: .long, help: "Allow spec.ssh.hostKeyPolicy: off (host keys are not checked; a warning is printed).")
    var insecureIgnoreHostKeys = false

    func run() async throws {
        let (plan, resolve, store, state, _) = try await RunSupport.appliedCluster(
            file: file, statePath: stateOption.state, lockTimeout: lockTimeout, insecure: insecureIgnoreHostKeys,
            notApplied: { plan in "the cluster \(plan.name) was never applied; a restore needs its state (lineage, hosts)" })
        defer { store.unlock() }
        let path = URL(fileURLWithPath: RunSupport.expand(from)).standardizedFileURL.path
        let archive: Restore.Archive
        do { archive = try await Restore.open(path: path, plan: plan, state: state) } catch let e as RestoreError {
            printError("error: refusing to restore: \(e)")
            throw Exit.badInput
        }
        let m = archive.manifest
        let prepared: Restore.Prepared
        do {
            prepared = try await Restore.prepare(archive, plan: plan, state: state, transport: RunSupport.sshTransport(),
                                                 resolve: resolve, note: { printError($0) })
        } catch let e as RestoreError {
            printError("error: refusing to restore: \(e)")
            throw e.badInput ? Exit.badInput : Exit.failure
        }
        print("Restore of \(plan.name) from \(path)")
        print("  snapshot taken on \(m.takenOn) at \(Timestamp.iso8601(m.createdAt)); Kubernetes \(m.kubernetesVersion ?? "?"), etcd \(m.etcdVersion); members then: \(m.members.joined(separator: ", "))")
        print("  sha256 \(archive.sha256)")
        print("\nbootstrap will:")
        for line in RestoreChecks.steps(m, controlPlanes: prepared.controlPlanes.map(\.name),
                                        workers: prepared.workers.map(\.name)) {
            print("  - \(line)")
        }
        do {
            try await Approval.confirm("Do you want to restore \(plan.name) to its state of \(Timestamp.iso8601(m.createdAt))?",
                                       autoApprove: autoApprove)
        } catch {
            await prepared.close()
            throw error
        }
        let restored: ClusterState
        do {
            restored = try await Restore.run(archive, prepared, state: state, readyTimeout: .seconds(readyTimeout),
                                             note: { print("  \($0)") })
            await prepared.close()
        } catch {
            await prepared.close()
            printError("error: restore failed: \(error)")
            printError("The control planes may be stopped (their manifests in \(RestoreRecipes.aside)); run the same restore again to finish it.")
            throw Exit.failure
        }
        do { _ = try await store.persist(restored) } catch {
            printError("error: the cluster was restored but the state could not record it: \(error)")
            throw Exit.failure
        }
        let forgotten = state.addons.count - restored.addons.count + state.manifests.count - restored.manifests.count
        print("\nRestored \(plan.name) to \(Timestamp.iso8601(m.createdAt)): \(prepared.controlPlanes.count) control plane(s), \(prepared.workers.count) worker(s) Ready.")
        if forgotten > 0 {
            print("The snapshot lacks \(forgotten) release(s) or object(s) the state recorded; `bootstrap plan -f \(file)` shows them, `apply` puts them back.")
        }
    }
}
