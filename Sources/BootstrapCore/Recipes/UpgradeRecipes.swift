import Foundation

/// The commands of the official kubeadm upgrade procedure, one node at a time: the new kubeadm, `kubeadm
/// upgrade plan|apply|node`, drain, the new kubelet and kubectl, restart, uncordon. Mutating ones are guarded
/// (`RemoteGuard`: host-wide lock, output to a file, time limit) so that a killed run never leaves a half-run
/// orphan and a re-run waits for it.
public enum UpgradeRecipes {
    /// The Kubernetes package repository of `version`'s minor (kept, and its index refreshed, for a patch).
    public static func repository(_ os: any NodeOS, version: String, limits: ClusterPlan.Timeouts) -> ShellCommand {
        NodeRecipes.kubernetesRepo(os, minor: minor(version), refresh: true, limits: limits)
    }

    /// `packages` moved to `version` and held again (`NodeOS.installKubernetesPackages` unholds, installs,
    /// holds).
    public static func install(_ os: any NodeOS, _ packages: [String], version: String,
                               limits: ClusterPlan.Timeouts) -> ShellCommand {
        let pm = os.packageManager(lockWait: limits.packages / 2)
        return NodeRecipes.packagesGuard("install \(packages.joined(separator: ", ")) \(version)", limits)
            .command(ShellCommand(steps: NodeRecipes.preludeSteps(pm)
                + NodeRecipes.steps(os.installKubernetesPackages(packages, version: version, pm))))
    }

    /// `kubeadm upgrade plan vX` (it must exit 0 and offer `kubeadm upgrade apply vX`: it refuses a skipped
    /// minor or a kubeadm older than the cluster), then `kubeadm upgrade apply vX -y`, once: under the kubeadm
    /// lock (a killed run's apply is waited for), both are skipped when this control plane's API server
    /// manifest and the cluster's API server are at vX already.
    public static func apply(version: String, limits: ClusterPlan.Timeouts) -> ShellCommand {
        let v = "v" + version
        let guarded = RemoteGuard(lock: "kubeadm", what: "kubeadm upgrade apply \(v)", seconds: limits.`init`,
                                  setting: "spec.timeouts.init")
        return guarded.command(ShellCommand(steps: [
            .init("out=$(" + Shell.join(["kubeadm", "upgrade", "plan", v]) + " 2>&1) || { printf '%s\\n' \"$out\"; exit 1; }",
                  name: "kubeadm upgrade plan \(v)"),
            .init("printf '%s\\n' \"$out\" | grep -qF " + Shell.quote("kubeadm upgrade apply \(v)")
                  + " || { printf '%s\\n' \"$out\"; echo " + Shell.quote("kubeadm upgrade plan does not offer \(v)") + "; exit 1; }",
                  name: "kubeadm upgrade plan offers \(v)"),
            .init(Shell.join(["kubeadm", "upgrade", "apply", v, "-y"])),
        ]), underLock: [
            "if grep -qF " + Shell.quote("kube-apiserver:\(v)") + " /etc/kubernetes/manifests/kube-apiserver.yaml 2>/dev/null"
                + " && kubectl --kubeconfig \(NodeRecipes.adminKubeconfig) get --raw /version 2>/dev/null | grep -Eq "
                + Shell.quote("\"gitVersion\": *\"\(v)\"") + "; then",
            "  echo '\(NodeRecipes.alreadyDone) (the control plane runs \(v))'; exit 0",
            "fi",
        ])
    }

    /// `kubeadm upgrade node` (re-runnable: it converges on the cluster's version).
    public static func node(limits: ClusterPlan.Timeouts) -> ShellCommand {
        RemoteGuard(lock: "kubeadm", what: "kubeadm upgrade node", seconds: limits.join, setting: "spec.timeouts.join")
            .command(ShellCommand(steps: [.init(Shell.join(["kubeadm", "upgrade", "node"]))]))
    }

    /// `kubectl drain` for an upgrade: DaemonSet pods stay, emptyDir data goes, bare pods refuse (no
    /// `--force`), and PodDisruptionBudgets are respected up to `timeout` seconds.
    public static func drain(node: String, timeout: Int) -> ShellCommand {
        NodeRecipes.kubectl(["drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=\(timeout)s"])
    }

    public static func uncordon(node: String) -> ShellCommand {
        NodeRecipes.kubectl(["uncordon", node])
    }

    /// The kubelet restarted on its new binary.
    public static let restartKubelet = ShellCommand(steps: ["systemctl daemon-reload", "systemctl restart kubelet"])


    /// The pods a drain could not evict (`pods/"NAME" -n "NS"` in kubectl's errors), as `NS/NAME`, sorted.
    public static func blockingPods(_ drainOutput: String) -> [String] {
        var out = Set<String>()
        for line in drainOutput.split(separator: "\n") where line.contains("evict") || line.contains("global timeout") {
            var rest = Substring(line)
            while let r = rest.range(of: "pods/\"") {
                let after = rest[r.upperBound...]
                guard let end = after.firstIndex(of: "\"") else { break }
                let name = after[..<end]
                var ns = "default"
                let tail = after[after.index(after: end)...]
                if tail.hasPrefix(" -n \""), let nsEnd = tail.dropFirst(5).firstIndex(of: "\"") {
                    ns = String(tail.dropFirst(5)[..<nsEnd])
                }
                out.insert("\(ns)/\(name)")
                rest = tail
            }
        }
        return out.sorted()
    }

    /// Says whether drain output shows a PodDisruptionBudget refusal.
    public static func blockedByBudget(_ drainOutput: String) -> Bool {
        drainOutput.contains("disruption budget") || drainOutput.contains("global timeout reached")
    }

    /// The etcd snapshot taken before an upgrade, kept on the control plane: `snapshot save` (the same recipe
    /// as `bootstrap backup`), then its size and SHA-256 (`size=…`, `sha256=…` lines after the status).
    public static func snapshotPath(to version: String, at date: Date) -> String {
        let stamp = Timestamp.iso8601(date).filter { $0 != "-" && $0 != ":" }
        return "\(EtcdRecipes.backupDirectory)/pre-upgrade-v\(version)-\(stamp).db"
    }

    public static func snapshotDigest(_ path: String) -> ShellCommand {
        ShellCommand(steps: [
            .init("echo \"size=$(stat -c %s " + Shell.quote(path) + ")\"", name: "stat \(path)"),
            .init("echo \"sha256=$(sha256sum " + Shell.quote(path) + " | cut -d' ' -f1)\"", name: "sha256sum \(path)"),
        ])
    }

    static func minor(_ version: String) -> String {
        UpgradeRules.minor(of: version) ?? version
    }
}
