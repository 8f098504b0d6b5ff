import BootstrapCore
import Foundation

/// Why a backup could not be taken. Never holds key material: only host names, commands and their errors.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `bootstrap backup`: an etcd snapshot on the first control plane of the plan that answers, checked with
/// `etcdutl snapshot status`, downloaded with the PKI a restore needs into one `BackupArchive` file.
public enum Backup {
    public struct Result: Sendable {
        public var record: BackupRecord
        public var manifest: BackupManifest
        public var snapshotSize: Int
    }

    /// The default archive path: `NAME-YYYYMMDDTHHMMSSZ.bootstrap-backup` in the state file's directory.
    public static func defaultPath(statePath: String, cluster: String, at date: Date) -> String {
        let dir = (statePath as NSString).deletingLastPathComponent
        let name = BackupArchive.fileName(cluster: cluster, at: date)
        return dir.isEmpty ? name : dir + "/" + name
    }

    /// Takes the backup and writes the archive to `path` (mode 0600, `AtomicFile`). `note` gets progress lines
    /// (host names and sizes only). The state is not touched: the caller records `Result.record`.
    public static func run(plan: ClusterPlan, state: ClusterState, transport: any HostTransport,
                           resolve: EndpointResolver, path: String, now: Date = Date(),
                           note: @Sendable (String) -> Void = { _ in }) async throws -> Result {
        let cps = plan.spec.hosts.filter { $0.role == .controlPlane && state.hosts[$0.name] != nil }
        guard !cps.isEmpty else {
            throw BackupError("the state records no control plane of the plan: nothing to back up")
        }
        // Never replace an archive (the state may list it): a second backup in the same second, or --out naming
        // an existing file, is refused before anything runs.
        if await AtomicFile.queue.run({ FileManager.default.fileExists(atPath: path) }) {
            throw BackupError("\(path) already exists; not replacing a backup (remove it, or choose another --out)")
        }
        var failures: [String] = []
        for host in cps {
            let ep = resolve(host.name, host.address, plan.ssh(for: host).port)
            let session: any HostSession
            do { session = try await transport.connect(ep) } catch {
                // The host named once: the line names it, the error's own text need not.
                let why = ErrorText.describe(error, about: host.name)
                failures.append("\(host.name): \(why)")
                note("\(host.name): \(why)")
                continue
            }
            do {
                let etcdVersion: String
                let members: [String]
                do {
                    etcdVersion = try await output(session, EtcdRecipes.version, "read the etcd version")
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    try await check(session, EtcdRecipes.install(version: etcdVersion), "install etcdctl v\(etcdVersion)")
                    members = try await output(session, EtcdRecipes.memberList, "etcdctl member list")
                        .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                } catch let e as BackupError {
                    // Not a healthy control plane: try the next one.
                    failures.append("\(host.name): \(e)")
                    note("\(host.name): \(e)")
                    await session.close()
                    continue
                }
                note("\(host.name): etcd \(etcdVersion), members \(members.joined(separator: ", "))")
                let result = try await take(session, host: host.name, plan: plan, state: state,
                                            etcdVersion: etcdVersion, members: members, path: path, now: now)
                await session.close()
                return result
            } catch {
                await session.close()
                throw error
            }
        }
        throw BackupError("no control plane answered: \(failures.joined(separator: "; "))")
    }

    static func take(_ session: any HostSession, host: String, plan: ClusterPlan, state: ClusterState,
                     etcdVersion: String, members: [String], path: String, now: Date) async throws -> Result {
        let remote = "\(EtcdRecipes.backupDirectory)/snapshot-\(UInt32.random(in: 0...UInt32.max)).db"
        let status: String
        do {
            status = try await output(session, EtcdRecipes.snapshot(to: remote), "etcdctl snapshot save")
        } catch {
            _ = try? await session.run(EtcdRecipes.remove(remote))
            throw error
        }
        // The guarded command's output is the tools' log lines, then the status document.
        let line = status.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)),
              case .object(let o) = json, o["totalSize"] != nil
        else {
            _ = try? await session.run(EtcdRecipes.remove(remote))
            throw BackupError("\(host): etcdutl snapshot status printed no status: \(status.prefix(200))")
        }
        var entries: [(name: String, data: Data)] = []
        do {
            let snapshot = try await session.download(remote)
            entries.append((BackupArchive.snapshotEntry, snapshot))
            for f in EtcdRecipes.pkiFiles {
                entries.append(("pki/" + f, try await session.download("\(EtcdRecipes.pki)/\(f)")))
            }
        } catch {
            _ = try? await session.run(EtcdRecipes.remove(remote))
            throw BackupError("\(host): cannot download the snapshot and the PKI: \(error)")
        }
        let removed = try? await session.run(EtcdRecipes.remove(remote))
        if removed?.succeeded != true {
            throw BackupError("\(host): cannot remove the snapshot \(remote) after downloading it")
        }
        let manifest = BackupManifest(cluster: plan.name, lineage: state.lineage,
                                      kubernetesVersion: state.cluster.kubernetesVersion, etcdVersion: etcdVersion,
                                      members: members, takenOn: host, createdAt: now)
        let data = BackupArchive.encode(manifest, entries: entries)
        try await AtomicFile.write(data, to: path, mode: 0o600, createDirectory: true)
        let (written, _) = try BackupArchive.manifest(data)
        return Result(record: BackupRecord(path: path, createdAt: now, size: data.count, sha256: Hashing.sha256(data)),
                      manifest: written, snapshotSize: entries[0].data.count)
    }

    private static func output(_ s: any HostSession, _ c: ShellCommand, _ what: String) async throws -> String {
        let r = try await s.run(c, stdin: nil, timeout: .seconds(600), output: nil)
        guard r.succeeded else {
            // A guarded command's output (both streams) comes back on stdout.
            let (step, stderr) = c.failedStep(in: r.stdoutText + String(decoding: r.stderr, as: UTF8.self))
            let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            let at = step.map { " at `\($0)`" } ?? ""
            throw BackupError("\(what) failed\(at) (exit \(r.exitStatus)): \(err.suffix(400))")
        }
        return r.stdoutText
    }

    private static func check(_ s: any HostSession, _ c: ShellCommand, _ what: String) async throws {
        _ = try await output(s, c, what)
    }
}
