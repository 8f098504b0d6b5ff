import Foundation

/// Commands for Helm releases and applied objects, run on the first control plane as root.
public enum HelmRecipes {
    public static let helmBinary = "/usr/local/bin/helm"
    public static let valuesDirectory = "\(NodeRecipes.bootstrapDirectory)/helm"
    public static let objectsFile = "\(NodeRecipes.bootstrapDirectory)/objects.yaml"
    public static let pruneFile = "\(NodeRecipes.bootstrapDirectory)/prune.yaml"
    /// How long `helm --wait` may take per release: the plan's Helm limit less a minute, so that Helm reports
    /// what it waited for before the limit stops it.
    static func releaseTimeout(_ limits: ClusterPlan.Timeouts) -> String { "\(max(limits.helm - 60, 30))s" }

    /// Each release has its own lock, `helm-NAMESPACE_RELEASE` (releases install in parallel, each on its own
    /// session: two releases never wait for each other, while a re-run waits for the same release left running
    /// by a killed run).
    public static func releaseGuard(namespace: String, release: String, _ what: String,
                                    _ limits: ClusterPlan.Timeouts) -> RemoteGuard {
        RemoteGuard(lock: "helm-\(fileName(namespace: namespace, release: release))", what: what, seconds: limits.helm,
                    setting: "spec.timeouts.helm")
    }

    /// `NAMESPACE_RELEASE` for file names: names of namespaces and releases have no `_`, so no two releases
    /// share one; anything but `a-z0-9.-` becomes `-`.
    static func fileName(namespace: String, release: String) -> String {
        let safe = { (s: String) in
            String(s.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == ".") ? $0 : "-" })
        }
        return "\(safe(namespace))_\(safe(release))"
    }

    /// Each release's own Helm repository file and cache (`HELM_REPOSITORY_CONFIG`, `HELM_REPOSITORY_CACHE`):
    /// Helm 3 rewrites its repositories file in place on `repo add`, so a release resolving its chart from a
    /// shared one while another release's `repo add` rewrites it could read it half-written. Releases running
    /// at the same time share no Helm file.
    public static func repositoryDirectory(namespace: String, release: String) -> String {
        "\(valuesDirectory)/repositories/\(fileName(namespace: namespace, release: release))"
    }

    static func repositoryEnvironment(namespace: String, release: String) -> [String] {
        let dir = repositoryDirectory(namespace: namespace, release: release)
        return ["env", "HELM_REPOSITORY_CONFIG=\(dir)/repositories.yaml", "HELM_REPOSITORY_CACHE=\(dir)/cache"]
    }

    /// Installs Helm `version` from its release artifact, checked against the published SHA-256 (kept when the
    /// right version is already there).
    public static func install(version: String = Releases.helmVersion, limits: ClusterPlan.Timeouts = .init())
        -> ShellCommand
    {
        let base = "https://get.helm.sh/"
        let steps: [ShellCommand.Step] = [
            "mkdir -p -m 700 \(valuesDirectory)",
            .init("if [ \"$(\(helmBinary) version --template '{{.Version}}' 2>/dev/null)\" = \(Shell.quote(version)) ]; then exit 0; fi",
                  name: "\(helmBinary) version"),
            .init("case \"$(uname -m)\" in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) echo \"unsupported architecture $(uname -m)\" >&2; exit 1 ;; esac",
                  name: "uname -m (the architecture)"),
            "tarball=\(Shell.quote("helm-\(version)-linux-"))\"$arch\".tar.gz",
            "tmp=$(mktemp -d)",
            "curl -fsSL -o \"$tmp/$tarball\" \(Shell.quote(base))\"$tarball\"",
            "curl -fsSL -o \"$tmp/$tarball.sha256sum\" \(Shell.quote(base))\"$tarball.sha256sum\"",
            "(cd \"$tmp\" && sha256sum --check --strict --quiet \"$tarball.sha256sum\")",
            "tar -xzf \"$tmp/$tarball\" -C \"$tmp\" \"linux-$arch/helm\"",
            "install -m 0755 \"$tmp/linux-$arch/helm\" \(helmBinary)",
        ]
        return RemoteGuard(lock: "helm", what: "install helm \(version)", seconds: limits.helm,
                           setting: "spec.timeouts.helm")
            .command(ShellCommand(steps: steps, cleanup: "[ -z \"${tmp:-}\" ] || rm -rf \"$tmp\"", privileged: true))
    }

    public static func valuesPath(_ r: HelmRelease) -> String { valuesPath(addon: r.addon, release: r.name) }

    static func valuesPath(addon: String, release: String) -> String { "\(valuesDirectory)/\(addon)-\(release).yaml" }

    /// Registers the chart's repository in the release's own repository file (`repositoryDirectory`: releases
    /// install in parallel), then `helm upgrade --install` with our values file, waiting for the workloads.
    public static func upgrade(_ r: HelmRelease, limits: ClusterPlan.Timeouts = .init()) -> ShellCommand {
        let env = repositoryEnvironment(namespace: r.namespace, release: r.name)
        let repo = Shell.join(env + [helmBinary, "repo", "add", r.chart.repoName, r.chart.repoURL, "--force-update"])
        let upgrade = Shell.join(env + [helmBinary, "upgrade", "--install", r.name, "\(r.chart.repoName)/\(r.chart.chart)",
                                  "--version", r.chart.version, "--namespace", r.namespace, "--create-namespace",
                                  "-f", valuesPath(r), "--wait", "--timeout", releaseTimeout(limits),
                                  "--kubeconfig", NodeRecipes.adminKubeconfig])
        return releaseGuard(namespace: r.namespace, release: r.name, "helm upgrade --install \(r.name) \(r.chart.chart) \(r.chart.version)", limits)
            .command(ShellCommand(steps: [.init("\(repo) >/dev/null", name: repo), .init(upgrade)], privileged: true))
    }

    /// Every Deployment, StatefulSet and DaemonSet of the cluster, one line each: the Helm release that made
    /// it (Helm 3 annotates every object it installs with `meta.helm.sh/release-name` and
    /// `-namespace`, whatever labels the chart chose) and the pod counts of its status. Read-only, and only
    /// these columns: no pod template (which may carry a chart's passwords) reaches the output or the log.
    public static let releaseWorkloads = NodeRecipes.kubectl([
        "get", "deployments,statefulsets,daemonsets", "--all-namespaces", "--no-headers",
        "-o", "custom-columns=" + ReleasePods.columns.map { "\($0.header):\($0.path)" }.joined(separator: ","),
    ])

    /// `helm uninstall`, where an already absent release counts as done.
    public static func uninstall(_ rec: AddonRecord, limits: ClusterPlan.Timeouts = .init()) -> ShellCommand {
        let release = rec.release, namespace = rec.namespace
        let h = { (args: [String]) in Shell.join([helmBinary] + args + ["--kubeconfig", NodeRecipes.adminKubeconfig]) }
        return releaseGuard(namespace: namespace, release: release, "helm uninstall \(release)", limits).command(ShellCommand(steps: [
            "if ! \(h(["status", release, "--namespace", namespace])) >/dev/null 2>&1; then exit 0; fi",
            .init(h(["uninstall", release, "--namespace", namespace, "--wait", "--timeout", releaseTimeout(limits)])),
            .init(Shell.join(["rm", "-f", valuesPath(addon: rec.addon, release: release)])),
            .init(Shell.join(["rm", "-rf", repositoryDirectory(namespace: namespace, release: release)])),
        ], privileged: true))
    }

    /// How long applying or pruning the plan's objects may take.
    static let objectsGuard = RemoteGuard(lock: "objects", what: "kubectl apply", seconds: 300)

    /// Server-side apply of the objects file, with bootstrap as the field manager.
    public static let applyObjects = objectsGuard.command(Shell.join(
        ["kubectl", "--kubeconfig", NodeRecipes.adminKubeconfig, "apply", "--server-side",
         "--field-manager=bootstrap", "--force-conflicts", "-f", objectsFile]))

    /// Deletes the objects named in the prune file; absent ones are fine.
    public static let pruneObjects = RemoteGuard(lock: "objects", what: "kubectl delete", seconds: 300).command(
        Shell.join(["kubectl", "--kubeconfig", NodeRecipes.adminKubeconfig, "delete", "--ignore-not-found",
                    "-f", pruneFile]))

    /// The prune file: just enough of each object to name it.
    public static func pruneDocument(_ records: [(key: String, record: ManifestRecord)]) -> String {
        records.map { key, rec -> String in
            let parts = key.split(separator: "/", maxSplits: 2).map(String.init)
            var md: [String: JSONValue] = ["name": .string(parts.last ?? "")]
            if parts.count == 3 { md["namespace"] = .string(parts[1]) }
            return YAMLText.render(.object(["apiVersion": .string(rec.apiVersion ?? "v1"), "kind": .string(parts[0]),
                                            "metadata": .object(md)]))
        }.joined(separator: "---\n")
    }

    /// The values file of `r` with its secrets filled in.
    public static func valuesFile(_ r: HelmRelease, secrets: [String: Secret]) -> String {
        YAMLText.render(fill(r.values, secrets))
    }

    static func fill(_ v: JSONValue, _ secrets: [String: Secret]) -> JSONValue {
        switch v {
        case .string(let s):
            for (name, secret) in secrets where s == Releases.secretPlaceholder(name) { return .string(secret.revealed) }
            return v
        case .array(let a): return .array(a.map { fill($0, secrets) })
        case .object(let o): return .object(o.mapValues { fill($0, secrets) })
        default: return v
        }
    }
}
