import BootstrapCore
import Foundation

/// Why a restore was refused or failed. `badInput`: refused before anything ran (a bad archive, another
/// cluster's backup); otherwise the operation failed. Never holds key material.
public struct RestoreError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public var badInput: Bool
    public init(_ description: String, badInput: Bool = false) {
        self.description = description
        self.badInput = badInput
    }
}

/// `bootstrap restore`: an etcd snapshot from a `BackupArchive` brought back by kubeadm's documented procedure.
/// `open` reads and checks the archive (nothing connects), `prepare` connects to every host and checks the
/// snapshot on the first control plane (nothing of the cluster changes), `run` does it.
public enum Restore {
    public struct Archive: Sendable {
        public var path: String
        public var manifest: BackupManifest
        public var entries: [String: Data]
        /// SHA-256 of the whole file.
        public var sha256: String
        public var size: Int
    }

    /// The hosts, connected, and the snapshot uploaded and checked on the first control plane.
    public struct Prepared: Sendable {
        public var controlPlanes: [ClusterPlan.Host]
        public var workers: [ClusterPlan.Host]
        var sessions: [String: any HostSession]
        var snapshot: String
        /// `etcdutl snapshot status` of the uploaded snapshot (revision, keys, size).
        public var status: String

        public func close() async {
            for s in sessions.values { await s.close() }
        }
    }

    /// Reads the archive (off the pool) and checks it against the plan and the state.
    public static func open(path: String, plan: ClusterPlan, state: ClusterState) async throws -> Archive {
        let data: Data
        do {
            data = try await AtomicFile.queue.run { try Data(contentsOf: URL(fileURLWithPath: path)) }
        } catch {
            throw RestoreError("cannot read \(path): \(error.localizedDescription)", badInput: true)
        }
        let manifest: BackupManifest, entries: [String: Data]
        do { (manifest, entries) = try BackupArchive.decode(data) } catch {
            throw RestoreError("\(path): \(error)", badInput: true)
        }
        if let why = RestoreChecks.refusal(manifest, plan: plan, state: state) {
            throw RestoreError("\(path): \(why)", badInput: true)
        }
        let needed = [BackupArchive.snapshotEntry] + EtcdRecipes.pkiFiles.map { "pki/" + $0 }
        let missing = needed.filter { entries[$0] == nil }
        if !missing.isEmpty {
            throw RestoreError("\(path): the backup lacks \(missing.joined(separator: ", "))", badInput: true)
        }
        return Archive(path: path, manifest: manifest, entries: entries, sha256: Hashing.sha256(data), size: data.count)
    }

    /// Connects to every host of the plan the state records (all must answer), installs etcdctl/etcdutl of the
    /// backup's etcd version on the first control plane, uploads the snapshot there and checks it with
    /// `etcdutl snapshot status`. Nothing of the cluster is changed.
    public static func prepare(_ archive: Archive, plan: ClusterPlan, state: ClusterState, transport: any HostTransport,
                               resolve: EndpointResolver, note: @Sendable (String) -> Void = { _ in }) async throws -> Prepared
    {
        let (cps, workers) = RestoreChecks.hosts(plan: plan, state: state)
        guard let first = cps.first else {
            throw RestoreError("the state records no control plane of the plan: nothing to restore onto", badInput: true)
        }
        var sessions: [String: any HostSession] = [:]
        var failures: [String] = []
        for host in cps + workers {
            do {
                sessions[host.name] = try await transport.connect(resolve(host.name, host.address, plan.ssh(for: host).port))
            } catch {
                failures.append("\(host.name): \(error)")
            }
        }
        func closeAll() async { for s in sessions.values { await s.close() } }
        if !failures.isEmpty {
            await closeAll()
            throw RestoreError("every host must answer before a restore; not reachable: \(failures.joined(separator: "; ")). Nothing was changed.")
        }
        let s = sessions[first.name]!
        let snapshot = RestoreRecipes.snapshotPath(sha256: archive.sha256)
        do {
            try await run(s, first.name, EtcdRecipes.install(version: archive.manifest.etcdVersion),
                          "install etcdctl v\(archive.manifest.etcdVersion)")
            _ = try await s.run(ShellCommand(steps: ["mkdir -p -m 700 \(EtcdRecipes.backupDirectory)"], privileged: true))
            try await s.upload(archive.entries[BackupArchive.snapshotEntry]!, to: snapshot, mode: 0o600)
            let out = try await run(s, first.name, RestoreRecipes.status(snapshot), "etcdutl snapshot status")
            note("\(first.name): snapshot checked: \(out.trimmingCharacters(in: .whitespacesAndNewlines))")
            return Prepared(controlPlanes: cps, workers: workers, sessions: sessions, snapshot: snapshot,
                            status: out.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch let e as RestoreError {
            _ = try? await s.run(EtcdRecipes.remove(snapshot))
            await closeAll()
            throw RestoreError("the snapshot was refused on \(first.name): \(e). Nothing was changed.")
        } catch {
            _ = try? await s.run(EtcdRecipes.remove(snapshot))
            await closeAll()
            throw RestoreError("\(first.name): cannot upload the snapshot: \(error). Nothing was changed.")
        }
    }

    /// The procedure. Returns the state to persist (the restore recorded; see `RestoreChecks.restoredState`).
    public static func run(_ archive: Archive, _ p: Prepared, state: ClusterState, now: @Sendable () -> Date = { Date() },
                           readyTimeout: Duration = .seconds(300),
                           note: @Sendable (String) -> Void = { _ in }) async throws -> ClusterState
    {
        let first = p.controlPlanes[0]
        let s0 = p.sessions[first.name]!
        let stamp = Timestamp.iso8601(now()).filter { $0.isNumber || $0 == "T" || $0 == "Z" }

        // 1. Every control plane stopped (static pods and etcd), so no API server writes into the old data.
        for cp in p.controlPlanes {
            note("\(cp.name): stopping the static pods (etcd, API server)")
            try await run(p.sessions[cp.name]!, cp.name, RestoreRecipes.stopControlPlane, "stop the control plane",
                          seconds: 240)
        }
        // 2. The backup's PKI and the snapshot on the first control plane, as a one-member cluster.
        note("\(first.name): restoring the snapshot of \(Timestamp.iso8601(archive.manifest.createdAt))")
        for f in EtcdRecipes.pkiFiles {
            let mode = f.hasSuffix(".key") ? 0o600 : 0o644
            do { try await s0.upload(archive.entries["pki/" + f]!, to: "\(EtcdRecipes.pki)/\(f)", mode: mode) } catch {
                throw RestoreError("\(first.name): cannot write \(EtcdRecipes.pki)/\(f): \(error)")
            }
        }
        try await run(s0, first.name, RestoreRecipes.restore(snapshot: p.snapshot, sha256: archive.sha256, stamp: stamp),
                      "etcdutl snapshot restore", seconds: 700)
        try await run(s0, first.name, RestoreRecipes.startControlPlane, "start the control plane")
        note("\(first.name): waiting for the API server")
        try await run(s0, first.name, RestoreRecipes.waitAPIServer(), "wait for the API server", seconds: 240)

        // 3. The other control planes, one at a time: data wiped, member added, started, waited for.
        for cp in p.controlPlanes.dropFirst() {
            let s = p.sessions[cp.name]!
            let words = try await run(s, cp.name, RestoreRecipes.member, "read the etcd member of etcd.yaml")
                .split(whereSeparator: \.isWhitespace).map(String.init)
            guard words.count == 2 else {
                throw RestoreError("\(cp.name): etcd.yaml gives no member name and peer URL")
            }
            note("\(cp.name): re-joining etcd as \(words[0]) (\(words[1]))")
            let initial = try await run(s0, first.name, RestoreRecipes.memberAdd(name: words[0], peerURL: words[1]),
                                        "etcdctl member add \(words[0])").trimmingCharacters(in: .whitespacesAndNewlines)
            guard RestoreRecipes.validInitialCluster(initial) else {
                throw RestoreError("\(first.name): etcdctl member list gave no usable --initial-cluster: \(initial.prefix(200))")
            }
            try await run(s, cp.name, RestoreRecipes.rejoin(initialCluster: initial), "re-join \(cp.name)")
            try await waitFor(s0, first.name, RestoreRecipes.memberStarted(words[0]), seconds: 180,
                              what: "etcd member \(words[0]) to start")
            try await run(s, cp.name, RestoreRecipes.waitAPIServer(), "wait for the API server", seconds: 240)
        }

        // 4. The workers' kubelets reconnect.
        for w in p.workers {
            note("\(w.name): restarting the kubelet")
            try await run(p.sessions[w.name]!, w.name, RestoreRecipes.restartKubelet, "systemctl restart kubelet")
        }

        // 5. Every node Ready; the state learns what the restored cluster holds.
        note("waiting for every node to be Ready")
        try await waitReady(s0, first.name, nodes: (p.controlPlanes + p.workers).map(\.name), timeout: readyTimeout)
        let releases = try await run(s0, first.name, RestoreRecipes.releases, "helm list")
        guard let present = RestoreChecks.parseReleases(Data(releases.utf8)) else {
            throw RestoreError("\(first.name): helm list -A -o json printed no list")
        }
        let objects = try await run(s0, first.name, RestoreRecipes.presentObjects(state.manifests.keys.sorted()),
                                    "kubectl get (the applied objects)")
        _ = try? await s0.run(RestoreRecipes.finish(snapshot: p.snapshot, sha256: archive.sha256))
        let record = RestoreRecord(path: archive.path, sha256: archive.sha256,
                                   snapshotCreatedAt: archive.manifest.createdAt, restoredAt: now(),
                                   restoredOn: first.name)
        return RestoreChecks.restoredState(state, record: record, releasesPresent: present,
                                           objectsPresent: Set(objects.split(separator: "\n").map(String.init)))
    }

    static func waitReady(_ s: any HostSession, _ host: String, nodes: [String], timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last = ""
        while true {
            let r = try await s.run(NodeRecipes.nodesJSON, stdin: nil, timeout: .seconds(60), output: nil)
            if r.succeeded {
                let status = NodeStatus.parse(r.stdout)
                let waiting = nodes.filter { status[$0]?.ready != true }
                if waiting.isEmpty { return }
                last = waiting.map { "\($0): \(status[$0]?.reason ?? "not registered")" }.joined(separator: "; ")
            } else {
                last = r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if clock.now >= deadline { throw RestoreError("nodes not Ready after \(timeout): \(last)") }
            try await Task.sleep(for: .seconds(2))
        }
    }

    static func waitFor(_ s: any HostSession, _ host: String, _ c: ShellCommand, seconds: Int, what: String) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(seconds)
        while true {
            let r = try await s.run(c, stdin: nil, timeout: .seconds(60), output: nil)
            if r.succeeded { return }
            if clock.now >= deadline {
                throw RestoreError("\(host): waited \(seconds)s for \(what): \(r.stderrText.suffix(300))")
            }
            try await Task.sleep(for: .seconds(2))
        }
    }

    @discardableResult
    static func run(_ s: any HostSession, _ host: String, _ c: ShellCommand, _ what: String, seconds: Int = 600)
        async throws -> String
    {
        let r = try await s.run(c, stdin: nil, timeout: .seconds(seconds), output: nil)
        guard r.succeeded else {
            let (step, stderr) = c.failedStep(in: r.stdoutText + r.stderrText)
            let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            let at = step.map { " at `\($0)`" } ?? ""
            throw RestoreError("\(host): \(what) failed\(at) (exit \(r.exitStatus)): \(err.suffix(400))")
        }
        return r.stdoutText
    }
}
