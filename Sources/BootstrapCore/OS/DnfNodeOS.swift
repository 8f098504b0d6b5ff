/// Amazon Linux 2023: dnf and rpm, the `rpm` repositories of pkgs.k8s.io.
public struct DnfNodeOS: NodeOS {
    public init() {}

    public var id: String { "dnf" }
    public var releases: [OSRelease] { [OSRelease(id: "amzn", name: "Amazon Linux", versions: ["2023"])] }

    public var detect: String { "command -v rpm >/dev/null 2>&1" }
    public func packageQuery(_ packages: [String]) -> String {
        // rpm prints "package X is not installed" on stdout for the others.
        "rpm -q --qf 'pkg.%{NAME}=%{VERSION}\\n' \(Shell.join(packages)) 2>/dev/null | grep '^pkg\\.'"
    }

    public func kubernetesPackageVersion(_ version: String) -> String { version }
    public func repositoryBase(minor: String) -> String { "https://pkgs.k8s.io/core:/stable:/v\(minor)/rpm/" }

    static let repoFile = "/etc/yum.repos.d/kubernetes.repo"
    /// The repository's section name (`--disableexcludes` names it).
    static let repoName = "kubernetes"
    public var repositoryFiles: [String] { [Self.repoFile] }

    /// dnf waits for its lock without a bound, or not at all (exit_on_lock): wait here, bounded.
    public func packageManager(lockWait: Int) -> PackageManager {
        let pid = "/var/lib/dnf/rpmdb_lock.pid"
        return PackageManager(prelude: [
            "i=0; while p=$(cat \(pid) 2>/dev/null) && [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; do",
            "  [ $i -ge \(lockWait) ] && { echo \"dnf is still locked by process $p after \(lockWait)s\" >&2; exit 1; }",
            "  sleep 1; i=$((i + 1))",
            "done",
        ], tool: "dnf --setopt=exit_on_lock=True")
    }

    public func containerdInstalled(version: String?) -> String {
        guard let version else { return "rpm -q containerd >/dev/null 2>&1" }
        // The plan may give the version alone or with its release.
        return "case \" $(rpm -q --qf '%{VERSION} %{VERSION}-%{RELEASE}' containerd 2>/dev/null) \" in *"
            + Shell.quote(" \(version) ") + "*) true ;; *) false ;; esac"
    }

    static func containerdPackage(_ version: String?) -> String { version.map { "containerd-\($0)" } ?? "containerd" }

    public func installContainerd(version: String?, _ pm: PackageManager) -> [String] {
        // dnf reads its metadata when it is stale by itself.
        ["\(pm.tool) install -y -q " + Shell.quote(Self.containerdPackage(version))]
    }

    public func installNodePackages(_ packages: [String], version: String, containerdVersion: String?,
                                    _ pm: PackageManager) -> [ShellCommand.Step] {
        // dnf reads the new repository's metadata by itself (its one index refresh); the repository's excludes
        // apply to its own packages only, so containerd comes from the OS repository in the same transaction.
        let v = kubernetesPackageVersion(version)
        let pinned = Shell.join(packages.map { "\($0)-\(v)" })
        let install = "\(pm.tool) install -y -q --disableexcludes=\(Self.repoName)"
        return [
            .init("set -- " + pinned),
            .init("if ! \(containerdInstalled(version: nil)); then set -- \(Shell.quote(Self.containerdPackage(containerdVersion))) \"$@\"; fi"),
            // Named by what it installs: a failure message shows the packages, not `"$@"`.
            .init("\(install) \"$@\"",
                  name: "\(install) \(pinned) (and \(Self.containerdPackage(containerdVersion)) when missing)"),
        ]
    }

    public func writeKubernetesRepository(minor: String) -> [String] {
        let base = repositoryBase(minor: minor)
        let repo = """
            [\(Self.repoName)]
            name=Kubernetes
            baseurl=\(base)
            enabled=1
            gpgcheck=1
            gpgkey=\(base)repodata/repomd.xml.key
            exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni

            """
        return ["printf %s \(Shell.quote(repo)) > \(Self.repoFile)"]
    }

    public func refreshRepositories(_ pm: PackageManager) -> [String] { ["\(pm.tool) makecache -q >/dev/null"] }

    public func installKubernetesPackages(_ packages: [String], version: String, _ pm: PackageManager) -> [String] {
        // The repository excludes them from every other dnf command, so no upgrade moves them.
        let v = kubernetesPackageVersion(version)
        return ["\(pm.tool) install -y -q --disableexcludes=\(Self.repoName) " + Shell.join(packages.map { "\($0)-\(v)" })]
    }

    /// dnf with the repository given on the command line (`--repofrompath`, the only one enabled) and its
    /// metadata cached in a temporary directory.
    public func repositoryVersionsQuery(_ package: String, minor: String) -> String {
        let base = repositoryBase(minor: minor)
        let id = "bootstrap-kubernetes-\(minor)"
        return """
            d=$(mktemp -d) || exit 1
            trap 'rm -rf "$d"' EXIT
            dnf -q --setopt=cachedir="$d" \(Shell.quote("--repofrompath=\(id),\(base)")) \(Shell.quote("--repo=\(id)")) \\
              \(Shell.quote("--setopt=\(id).gpgkey=\(base)repodata/repomd.xml.key")) list --showduplicates \(Shell.quote(package))
            """
    }

    /// `kubeadm.x86_64   1.35.5-150500.1.1   REPO` (installed ones name their repository with `@`: not counted).
    public func parseRepositoryVersions(_ output: String, package: String) -> [String] {
        output.split(separator: "\n").compactMap { line -> String? in
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 3, f[0].hasPrefix(package + "."), !f[2].hasPrefix("@") else { return nil }
            var v = f[1]
            if let colon = v.firstIndex(of: ":") { v = v[v.index(after: colon)...] }  // an epoch
            return String(v.split(separator: "-").first ?? v)
        }
    }

    public func purgeKubernetes(_ packages: [String], _ pm: PackageManager) -> [String] {
        [
            "\(pm.tool) remove -y -q \(Shell.join(packages)) >/dev/null || true",
            "rm -f \(Shell.join(repositoryFiles))",
        ]
    }
}
