/// Ubuntu and Debian: apt and dpkg, the `deb` repositories of pkgs.k8s.io.
public struct AptNodeOS: NodeOS {
    public init() {}

    public var id: String { "apt" }
    public var releases: [OSRelease] {
        [OSRelease(id: "ubuntu", name: "Ubuntu", versions: ["22.04", "24.04"]),
         OSRelease(id: "debian", name: "Debian", versions: ["12"])]
    }

    public var detect: String { "command -v dpkg-query >/dev/null 2>&1" }
    public func packageQuery(_ packages: [String]) -> String {
        // Known but not installed packages print an empty version.
        "dpkg-query -W -f='pkg.${Package}=${Version}\\n' \(Shell.join(packages)) 2>/dev/null"
    }

    public func kubernetesPackageVersion(_ version: String) -> String { "\(version)-1.1" }
    public func repositoryBase(minor: String) -> String { "https://pkgs.k8s.io/core:/stable:/v\(minor)/deb/" }

    static let keyring = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
    static let sourcesList = "/etc/apt/sources.list.d/kubernetes.list"
    public var repositoryFiles: [String] { [Self.sourcesList, Self.keyring] }

    /// Waits a bounded time for the dpkg lock (unattended-upgrades may hold it on a fresh image), after
    /// repairing an install a killed run left half-done (`dpkg --configure -a`).
    public func packageManager(lockWait: Int) -> PackageManager {
        PackageManager(prelude: [
            "export DEBIAN_FRONTEND=noninteractive",
            // dpkg's journal holds what an interrupted run unpacked; apt refuses to work until it is set up
            "if [ -n \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ]; then dpkg --configure -a; fi",
        ], tool: "apt-get -o DPkg::Lock::Timeout=\(lockWait)")
    }

    public func containerdInstalled(version: String?) -> String {
        // The status, not only the version: a removed package whose configuration is left has a version too.
        let want = "installed" + (version.map { " " + $0 } ?? "")
        return "[ \"$(dpkg-query -W -f='${db:Status-Status}\(version == nil ? "" : " ${Version}")' containerd 2>/dev/null)\" = "
            + Shell.quote(want) + " ]"
    }

    static func containerdPackage(_ version: String?) -> String { version.map { "containerd=\($0)" } ?? "containerd" }

    public func installContainerd(version: String?, _ pm: PackageManager) -> [String] {
        // A fresh image's package lists are stale or empty: refresh them before installing.
        ["\(pm.tool) update -q >/dev/null", "\(pm.tool) install -y -q " + Shell.quote(Self.containerdPackage(version))]
    }

    public func installNodePackages(_ packages: [String], version: String, containerdVersion: String?,
                                    _ pm: PackageManager) -> [ShellCommand.Step] {
        let v = kubernetesPackageVersion(version)
        let pinned = Shell.join(packages.map { "\($0)=\(v)" })
        let install = "\(pm.tool) install -y -q --allow-downgrades --allow-change-held-packages"
        return [
            .init("\(pm.tool) update -q >/dev/null"),
            .init("set -- " + pinned),
            .init("if ! \(containerdInstalled(version: nil)); then set -- \(Shell.quote(Self.containerdPackage(containerdVersion))) \"$@\"; fi"),
            // Named by what it installs: a failure message shows the packages, not `"$@"`.
            .init("\(install) \"$@\"",
                  name: "\(install) \(pinned) (and \(Self.containerdPackage(containerdVersion)) when missing)"),
            .init("apt-mark hold \(Shell.join(packages)) >/dev/null"),
        ]
    }

    public func writeKubernetesRepository(minor: String) -> [String] {
        let base = repositoryBase(minor: minor)
        let list = "deb [signed-by=\(Self.keyring)] \(base) /\n"
        return [
            "mkdir -p -m 755 /etc/apt/keyrings",
            "curl -fsSL \(Shell.quote(base + "Release.key")) | gpg --dearmor --yes -o \(Self.keyring)",
            "printf %s \(Shell.quote(list)) > \(Self.sourcesList)",
        ]
    }

    public func refreshRepositories(_ pm: PackageManager) -> [String] { ["\(pm.tool) update -q >/dev/null"] }

    public func installKubernetesPackages(_ packages: [String], version: String, _ pm: PackageManager) -> [String] {
        let v = kubernetesPackageVersion(version)
        return [
            // --allow-change-held-packages moves held packages to the pinned version; hold them again after.
            "\(pm.tool) install -y -q --allow-downgrades --allow-change-held-packages "
                + Shell.join(packages.map { "\($0)=\(v)" }),
            "apt-mark hold \(Shell.join(packages)) >/dev/null",
        ]
    }

    /// apt with its sources, lists and caches in a temporary directory: the repository's key and one source
    /// line there, `apt-get update` into that directory, `apt-cache madison`.
    public func repositoryVersionsQuery(_ package: String, minor: String) -> String {
        let base = repositoryBase(minor: minor)
        return """
            d=$(mktemp -d) || exit 1
            trap 'rm -rf "$d"' EXIT
            mkdir -p "$d/parts" "$d/lists/partial" "$d/cache/archives/partial" && mkdir -m 700 "$d/gnupg"
            curl -fsSL -o "$d/Release.key" \(Shell.quote(base + "Release.key")) || exit 1
            gpg --homedir "$d/gnupg" --dearmor -o "$d/keyring.gpg" "$d/Release.key" || exit 1
            printf 'deb [signed-by=%s] %s /\\n' "$d/keyring.gpg" \(Shell.quote(base)) > "$d/sources.list"
            set -- -o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/parts" \\
              -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o APT::Sandbox::User=root
            apt-get "$@" update -q >"$d/update.log" 2>&1 || { cat "$d/update.log" >&2; exit 1; }
            apt-cache "$@" madison \(Shell.quote(package))
            """
    }

    /// `   kubeadm | 1.35.5-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages`.
    public func parseRepositoryVersions(_ output: String, package: String) -> [String] {
        output.split(separator: "\n").compactMap { line -> String? in
            let f = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count >= 3, f[0] == package else { return nil }
            // the Debian revision (`-1.1`) follows the last dash
            return f[1].lastIndex(of: "-").map { String(f[1][..<$0]) } ?? f[1]
        }
    }

    public func purgeKubernetes(_ packages: [String], _ pm: PackageManager) -> [String] {
        [
            "apt-mark unhold \(Shell.join(packages)) >/dev/null 2>&1 || true",
            "\(pm.tool) purge -y -q \(Shell.join(packages)) >/dev/null || true",
            "rm -f \(Shell.join(repositoryFiles))",
        ]
    }
}
