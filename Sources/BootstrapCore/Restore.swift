import Foundation

/// What `bootstrap restore` decides before anything runs: whether an archive may be restored onto the cluster of
/// a plan and its state, and the hosts' parts in the procedure (kubeadm's "Restoring an etcd cluster": all
/// control planes stopped, the snapshot restored on one, the others re-joined one at a time, kubelets restarted).
public enum RestoreChecks {
    /// Why `manifest` cannot be restored onto the cluster of `plan` and `state`; nil when it can.
    public static func refusal(_ manifest: BackupManifest, plan: ClusterPlan, state: ClusterState) -> String? {
        if manifest.cluster != plan.name {
            return "the backup is of the cluster \(manifest.cluster), not \(plan.name)"
        }
        if manifest.lineage != state.lineage {
            return "the backup is of another cluster named \(manifest.cluster) (state lineage \(manifest.lineage), "
                + "this state's is \(state.lineage)): restoring it would bring back another cluster's objects"
        }
        let planMinor = minor(plan.spec.kubernetes.version)
        guard let v = manifest.kubernetesVersion else {
            return "the backup does not say its Kubernetes version; this plan runs \(plan.spec.kubernetes.version)"
        }
        if minor(v) != planMinor {
            return "the backup is of Kubernetes \(v), the plan runs \(plan.spec.kubernetes.version): "
                + "a snapshot is restored only onto the same minor release (\(minor(v)))"
        }
        if manifest.etcdVersion.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+$"#, options: .regularExpression) == nil {
            return "the backup's etcd version \(manifest.etcdVersion) is not a version"
        }
        return nil
    }

    /// `1.34` of `1.34.1` (or of `v1.34.1`).
    static func minor(_ version: String) -> String {
        let v = version.hasPrefix("v") ? String(version.dropFirst()) : version
        return v.split(separator: ".").prefix(2).joined(separator: ".")
    }

    /// The control planes that take part, the one that anchors the cluster first (it restores the snapshot,
    /// `ClusterPlan.anchorControlPlane(state:)`), then in plan order, and the workers: the plan's hosts the state
    /// records.
    public static func hosts(plan: ClusterPlan, state: ClusterState)
        -> (controlPlanes: [ClusterPlan.Host], workers: [ClusterPlan.Host])
    {
        let known = plan.spec.hosts.filter { state.hosts[$0.name] != nil }
        let anchor = plan.anchorControlPlane(state: state)?.name
        let cps = known.filter { $0.role == .controlPlane }
        return (cps.filter { $0.name == anchor } + cps.filter { $0.name != anchor }, known.filter { $0.role != .controlPlane })
    }

    /// What will happen, for people, before they are asked.
    public static func steps(_ manifest: BackupManifest, controlPlanes: [String], workers: [String]) -> [String] {
        guard let first = controlPlanes.first else { return [] }
        var lines = [
            "stop the control-plane static pods and etcd on \(controlPlanes.joined(separator: ", ")) (manifests moved to \(RestoreRecipes.aside))",
            "\(first): restore the snapshot of \(Timestamp.iso8601(manifest.createdAt)) into a fresh etcd data directory (the old one is kept beside it), with the backup's CA, front-proxy CA, service-account keys and etcd CA",
            "\(first): start a one-member etcd and the API server",
        ]
        for cp in controlPlanes.dropFirst() {
            lines.append("\(cp): wipe its etcd data, add it as an etcd member again, start its control plane")
        }
        if !workers.isEmpty { lines.append("restart the kubelet on \(workers.joined(separator: ", "))") }
        lines.append("wait for every node to be Ready; record the restore in the state")
        lines.append("lost: every change to the cluster after \(Timestamp.iso8601(manifest.createdAt)) (objects, releases, nodes joined since)")
        return lines
    }

    /// The state after a restore onto `on`: the restore recorded; releases and applied objects the restored
    /// cluster does not hold are forgotten (so `plan` shows them again as what the plan wants beyond the
    /// snapshot); the certificate key expires (the uploaded control-plane certificates may postdate the snapshot).
    public static func restoredState(_ state: ClusterState, record: RestoreRecord, releasesPresent: Set<String>,
                                     objectsPresent: Set<String>) -> ClusterState {
        var s = state
        s.restores.append(record)
        s.addons = s.addons.filter { releasesPresent.contains(releaseKey($0.value)) }
        s.manifests = s.manifests.filter { objectsPresent.contains($0.key) }
        if s.cluster.secrets["certificateKey"] != nil {
            s.cluster.secrets["certificateKey"]?.expiresAt = record.restoredAt
        }
        return s
    }

    /// `NAMESPACE/RELEASE CHART-VERSION`, as `RestoreRecipes.releases` prints a release.
    public static func releaseKey(_ r: AddonRecord) -> String { "\(r.namespace)/\(r.release) \(r.chart)-\(r.version)" }

    /// The present releases from `helm list -A -o json`.
    public static func parseReleases(_ data: Data) -> Set<String>? {
        guard case .array(let items)? = try? JSONDecoder().decode(JSONValue.self, from: data) else { return nil }
        var out: Set<String> = []
        for case .object(let o) in items {
            if case .string(let name)? = o["name"], case .string(let ns)? = o["namespace"], case .string(let chart)? = o["chart"] {
                out.insert("\(ns)/\(name) \(chart)")
            }
        }
        return out
    }
}

/// The remote commands of a restore, run as root on a control plane unless said otherwise.
public enum RestoreRecipes {
    public static let manifests = "/etc/kubernetes/manifests"
    /// Where the static pod manifests wait while the control plane is stopped.
    public static let aside = "\(NodeRecipes.bootstrapDirectory)/restore/manifests"
    public static func snapshotPath(sha256: String) -> String {
        "\(EtcdRecipes.backupDirectory)/restore-\(sha256.prefix(16)).db"
    }

    /// Lines that read the etcd static pod's flags from the manifest set aside (kubeadm's etcd.yaml).
    static func flagLines(_ flags: [(variable: String, flag: String)]) -> [ShellCommand.Step] {
        var steps: [ShellCommand.Step] = [
            .init("test -f \(aside)/etcd.yaml || { echo \"\(aside)/etcd.yaml is missing: the control plane was not stopped by bootstrap restore\" >&2; exit 1; }",
                  name: "test -f \(aside)/etcd.yaml"),
        ]
        for (v, f) in flags {
            steps.append(.init("\(v)=$(sed -n 's/^ *- --\(f)=//p' \(aside)/etcd.yaml | head -n 1 | tr -d '\"')"))
            steps.append(.init("test -n \"$\(v)\" || { echo 'etcd.yaml has no --\(f)' >&2; exit 1; }",
                               name: "--\(f) of etcd.yaml"))
        }
        return steps
    }

    /// Checks a snapshot uploaded to `path` with `etcdutl snapshot status` (its hash), printing the status.
    public static func status(_ path: String) -> ShellCommand {
        ShellCommand(steps: [.init(Shell.join([EtcdRecipes.etcdutl, "snapshot", "status", path, "-w", "json"]),
                                   name: "etcdutl snapshot status")], privileged: true)
    }

    /// Moves the static pod manifests aside (kept there if an earlier run did) and waits until etcd and the
    /// API server no longer listen.
    public static let stopControlPlane = ShellCommand(steps: [
        .init("mkdir -p -m 700 \(aside)"),
        .init("for f in \(manifests)/*.yaml; do [ -e \"$f\" ] || continue; mv -f \"$f\" \(aside)/; done",
              name: "move \(manifests)/*.yaml to \(aside)"),
        .init("test -f \(aside)/etcd.yaml || { echo 'no etcd.yaml among the static pod manifests: this host runs no local etcd' >&2; exit 1; }",
              name: "test -f \(aside)/etcd.yaml"),
        .init("i=0; while [ -n \"$(ss -Hltn 'sport = :2379')$(ss -Hltn 'sport = :6443')\" ]; do i=$((i+1)); [ $i -le 180 ] || { echo 'etcd or the API server still listens 180s after their manifests were moved' >&2; exit 1; }; sleep 1; done",
              name: "wait for etcd and the API server to stop"),
    ], privileged: true)

    /// On the first control plane: the etcd data directory moved aside (kept, named by `stamp`) and the
    /// snapshot restored into a fresh one as a one-member cluster of this host. Done once per snapshot: a
    /// re-run after a kill finds its marker and keeps the restored directory.
    static func marker(_ sha256: String) -> String { "\(NodeRecipes.bootstrapDirectory)/restore/restored-\(sha256.prefix(16))" }

    /// After a finished restore: its marker and the uploaded snapshot removed (a later restore of the same
    /// archive restores again).
    public static func finish(snapshot: String, sha256: String) -> ShellCommand {
        ShellCommand(steps: [.init(Shell.join(["rm", "-f", marker(sha256), snapshot]))], privileged: true)
    }

    public static func restore(snapshot: String, sha256: String, stamp: String) -> ShellCommand {
        let marker = marker(sha256)
        return RemoteGuard(lock: "etcd-restore", what: "etcdutl snapshot restore", seconds: 300).command(
            ShellCommand(steps: flagLines([("name", "name"), ("peer", "initial-advertise-peer-urls"), ("data", "data-dir")]) + [
                .init("if [ -f \(marker) ]; then echo 'restored already'; exit 0; fi"),
                .init("if [ -e \"$data\" ]; then mv \"$data\" \"$data\".before-restore-\(stamp); fi",
                      name: "move the old etcd data directory aside"),
                .init(Shell.join([EtcdRecipes.etcdutl, "snapshot", "restore", snapshot]) + " --data-dir \"$data\" --name \"$name\" --initial-cluster \"$name=$peer\" --initial-advertise-peer-urls \"$peer\" >&2",
                      name: "etcdutl snapshot restore"),
                .init("chmod 700 \"$data\""),
                .init("touch \(marker)"),
            ], privileged: true))
    }

    /// The static pod manifests back in place: the kubelet starts etcd and the control plane again.
    public static let startControlPlane = ShellCommand(steps: [
        .init("test -d \(aside)"),
        .init("for f in \(aside)/*.yaml; do [ -e \"$f\" ] || continue; mv -f \"$f\" \(manifests)/; done",
              name: "move the static pod manifests back to \(manifests)"),
    ], privileged: true)

    /// Waits (up to `seconds`) for the API server of this host to answer `/readyz` through the admin kubeconfig.
    public static func waitAPIServer(seconds: Int = 180) -> ShellCommand {
        ShellCommand(steps: [
            .init("i=0; until kubectl --kubeconfig \(NodeRecipes.adminKubeconfig) get --raw /readyz >/dev/null 2>&1; do i=$((i+1)); [ $i -le \(seconds) ] || { kubectl --kubeconfig \(NodeRecipes.adminKubeconfig) get --raw /readyz; exit 1; }; sleep 1; done",
                  name: "wait for the API server (/readyz)"),
        ], privileged: true)
    }

    /// This host's etcd member name and peer URL (`NAME URL`), from its manifest set aside.
    public static let member = ShellCommand(
        steps: flagLines([("name", "name"), ("peer", "initial-advertise-peer-urls")]) + ["echo \"$name $peer\""],
        privileged: true)

    /// On the restored control plane: `etcdctl member add` of a re-joining control plane unless it is a member
    /// already; prints the `--initial-cluster` it joins with (every member's `NAME=PEER-URL`, itself included).
    public static func memberAdd(name: String, peerURL: String) -> ShellCommand {
        let q = Shell.quote(name), u = Shell.quote(peerURL)
        return ShellCommand(steps: [
            .init("l=$(" + EtcdRecipes.ctl("member list") + ")", name: "etcdctl member list"),
            .init("if ! printf '%s\\n' \"$l\" | awk -F', ' -v u=\(u) '$4 == u {f=1} END {exit !f}'; then "
                  + EtcdRecipes.ctl("member add \(q) --peer-urls=\(u)") + " >&2; l=$(" + EtcdRecipes.ctl("member list") + "); fi",
                  name: "etcdctl member add \(name)"),
            "printf '%s\\n' \"$l\" | awk -F', ' -v n=\(q) -v u=\(u) 'NF >= 4 {m = $3; if ($4 == u) m = n; if (m != \"\") printf \"%s%s=%s\", (c++ ? \",\" : \"\"), m, $4} END {print \"\"}'",
        ], privileged: true)
    }

    /// A re-joining control plane: its old etcd data wiped, its etcd manifest told to join the existing
    /// cluster (`--initial-cluster`, `--initial-cluster-state=existing`), the static pods started again.
    /// `initialCluster` must pass `validInitialCluster`.
    public static func rejoin(initialCluster: String) -> ShellCommand {
        let edit = "s|^\\( *\\)- --name=.*$|&\\n\\1- --initial-cluster=\(initialCluster)\\n\\1- --initial-cluster-state=existing|"
        return ShellCommand(steps: flagLines([("data", "data-dir")]) + [
            .init("rm -rf \"$data\" && mkdir -p -m 700 \"$data\"", name: "wipe the etcd data directory"),
            .init("sed -i '/^ *- --initial-cluster=/d; /^ *- --initial-cluster-state=/d' \(aside)/etcd.yaml"),
            .init("sed -i \(Shell.quote(edit)) \(aside)/etcd.yaml", name: "set --initial-cluster in etcd.yaml"),
            .init("grep -q -- '- --initial-cluster-state=existing' \(aside)/etcd.yaml",
                  name: "check --initial-cluster-state=existing in etcd.yaml"),
            .init("for f in \(aside)/*.yaml; do [ -e \"$f\" ] || continue; mv -f \"$f\" \(manifests)/; done",
                  name: "move the static pod manifests back to \(manifests)"),
        ], privileged: true)
    }

    /// `NAME=https://ADDR:PORT[,…]`, nothing a shell or sed would read otherwise.
    public static func validInitialCluster(_ s: String) -> Bool {
        s.range(of: #"^[A-Za-z0-9._-]+=https://[A-Za-z0-9.:\[\]-]+(,[A-Za-z0-9._-]+=https://[A-Za-z0-9.:\[\]-]+)*$"#,
                options: .regularExpression) != nil
    }

    /// `member list` on the restored control plane: exit 0 once `name` is a started voting member.
    public static func memberStarted(_ name: String) -> ShellCommand {
        ShellCommand(steps: [
            .init("l=$(" + EtcdRecipes.ctl("member list") + ")", name: "etcdctl member list"),
            .init("printf '%s\\n' \"$l\" | awk -F', ' -v n=\(Shell.quote(name)) '$2 == \"started\" && $3 == n && $6 == \"false\" {f=1} END {exit !f}'",
                  name: "\(name) started"),
        ], privileged: true)
    }

    /// Restarts the kubelet (workers reconnect to the restored API server).
    public static let restartKubelet = ShellCommand(["systemctl", "restart", "kubelet"])

    /// The releases present, for the state (`helm list -A -o json`).
    public static let releases = ShellCommand([HelmRecipes.helmBinary, "list", "-A", "-o", "json",
                                               "--kubeconfig", NodeRecipes.adminKubeconfig])

    /// Which of the applied objects (`KIND/NAMESPACE/NAME` or `KIND/NAME` keys) exist: prints their keys.
    public static func presentObjects(_ keys: [String]) -> ShellCommand {
        var lines: [String] = []
        for key in keys {
            let p = key.split(separator: "/", maxSplits: 2).map(String.init)
            guard p.count >= 2 else { continue }
            var argv = ["kubectl", "--kubeconfig", NodeRecipes.adminKubeconfig, "get", p[0], p[p.count - 1], "-o", "name",
                        "--ignore-not-found"]
            if p.count == 3 { argv += ["-n", p[1]] }
            lines.append("if [ -n \"$(\(Shell.join(argv)) 2>/dev/null)\" ]; then echo \(Shell.quote(key)); fi")
        }
        return ShellCommand(script: lines.isEmpty ? "true" : lines.joined(separator: "\n"))
    }
}
