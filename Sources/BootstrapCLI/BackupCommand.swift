import ArgumentParser
import BootstrapCore
import BootstrapEngine
import Foundation

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take an etcd snapshot and save it with the cluster's PKI in one archive file.",
        discussion: """
            On the first control plane of the plan that answers: installs etcdctl/etcdutl of the cluster's etcd \
            version (release tarball, checked against its SHA256SUMS), runs `etcdctl snapshot save` with the \
            etcd client certificate, checks it with `etcdutl snapshot status`, and downloads it with the CA, \
            front-proxy CA, service-account keys and etcd CA into NAME-YYYYMMDDTHHMMSSZ.bootstrap-backup \
            (mode 0600) beside the state, or --out FILE. The archive's manifest holds the payload's SHA-256; the \
            state lists the backups (`bootstrap show --json`). The archive holds private keys: keep it safe.
            """)

    @Option(name: [.customShort("f"), .customLong("file")],
            help: ArgumentHelp("The cluster plan.", valueName: "FILE"), completion: .file())
    var file: String

    @Option(name: .long, help: ArgumentHelp("Where to write the archive.", valueName: "FILE"), completion: .file())
    var out: String?

    @OptionGroup var stateOption: StateOption

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for another command's state lock.", valueName: "SECONDS"))
    var lockTimeout: Int = 0

    @Flag(name: .long, help: "Allow spec.ssh.hostKeyPolicy: off (host keys are not checked; a warning is printed).")
    var insecureIgnoreHostKeys = false

    func run() async throws {
        let file = self.file
        let (plan, resolve, store, applied, statePath) = try await RunSupport.appliedCluster(
            file: file, statePath: stateOption.state, lockTimeout: lockTimeout, insecure: insecureIgnoreHostKeys,
            notApplied: { plan in "the cluster \(plan.name) was never applied; run `bootstrap apply -f \(file)` first" })
        defer { store.unlock() }
        var state = applied
        let now = Date()
        // Recorded in the state as an absolute path, so `show` names the file wherever it is run from.
        let path = out.map { URL(fileURLWithPath: RunSupport.expand($0)).standardizedFileURL.path }
            ?? Backup.defaultPath(statePath: statePath, cluster: plan.name, at: now)
        let result: Backup.Result
        do {
            result = try await Backup.run(plan: plan, state: state, transport: RunSupport.sshTransport(),
                                          resolve: resolve, path: path, now: now, note: { printError($0) })
        } catch {
            printError("error: backup failed: \(error)")
            throw Exit.failure
        }
        state.backups.append(result.record)
        do { _ = try await store.persist(state) } catch {
            printError("error: the backup \(path) was written but the state could not record it: \(error)")
            throw Exit.failure
        }
        let m = result.manifest
        print("Backup of \(plan.name) written to \(path)")
        print("  taken on \(m.takenOn) at \(Timestamp.iso8601(m.createdAt)); Kubernetes \(m.kubernetesVersion ?? "?"), etcd \(m.etcdVersion); members \(m.members.joined(separator: ", "))")
        print("  \(result.record.size) bytes (snapshot \(result.snapshotSize) bytes), sha256 \(result.record.sha256)")
    }
}
