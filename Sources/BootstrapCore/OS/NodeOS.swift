/// One release of an operating system bootstrap installs on, as `/etc/os-release` names it.
public struct OSRelease: Sendable, Hashable {
    /// `ID`: `ubuntu`, `debian`, `amzn`.
    public var id: String
    /// What people call it: `Ubuntu`, `Amazon Linux`.
    public var name: String
    /// `VERSION_ID`s supported: `22.04`, `12`, `2023`.
    public var versions: [String]

    public init(id: String, name: String, versions: [String]) {
        self.id = id
        self.name = name
        self.versions = versions
    }
}

/// A host's package manager as the recipes drive it: the lines that make it ready (an interrupted dpkg, a
/// lock held by another process) and the command with its options.
public struct PackageManager: Sendable, Hashable {
    public var prelude: [String]
    public var tool: String
}

/// Everything that differs between the operating systems a node runs: package names and version strings,
/// the Kubernetes package repository and its files, install, purge, the installed-package query. One
/// implementation per package manager (`AptNodeOS`, `DnfNodeOS`), chosen once per host from its facts
/// (`NodeOSes.for`) and carried in the step context; `NodeRecipes` wraps what it returns in guards.
///
/// To add an OS: a release in the `releases` of the implementation that installs it, or a new implementation
/// listed in `NodeOSes.all` (the facts script, the supported list and the recipe tests pick it up).
public protocol NodeOS: Sendable {
    /// The package manager's name: `apt`, `dnf`.
    var id: String { get }
    /// The releases this implementation installs on.
    var releases: [OSRelease] { get }

    /// A shell condition true on a host of this family; the facts script runs the first matching query.
    var detect: String { get }
    /// Shell that prints `pkg.NAME=VERSION` for each of `packages` installed (read-only; facts).
    func packageQuery(_ packages: [String]) -> String

    /// The package version of Kubernetes release `version` in pkgs.k8s.io, as installs pin it and the
    /// package query reports it.
    func kubernetesPackageVersion(_ version: String) -> String
    /// The pkgs.k8s.io repository of a Kubernetes minor for this package format.
    func repositoryBase(minor: String) -> String
    /// The files the repository step writes (purge removes them).
    var repositoryFiles: [String] { get }

    /// The package manager, waiting at most `lockWait` seconds for its lock.
    func packageManager(lockWait: Int) -> PackageManager
    /// A shell condition true when containerd is installed, at package version `version` when one is given.
    func containerdInstalled(version: String?) -> String
    /// Installs containerd (`version`: a package version, or the newest), its index refreshed first.
    func installContainerd(version: String?, _ pm: PackageManager) -> [String]
    /// A host's packages in one transaction after one index refresh: `packages` at Kubernetes release `version`
    /// (as `installKubernetesPackages`), and containerd (at `containerdVersion`, or the newest) unless it is
    /// installed already (a changed containerd on a node is the containerd step's, which drains it first).
    func installNodePackages(_ packages: [String], version: String, containerdVersion: String?, _ pm: PackageManager)
        -> [ShellCommand.Step]
    /// Writes the Kubernetes package repository of `minor` (`repositoryFiles`); needs no package manager.
    func writeKubernetesRepository(minor: String) -> [String]
    /// Reads the repositories again (after `writeKubernetesRepository`; an upgrade's new repository).
    func refreshRepositories(_ pm: PackageManager) -> [String]
    /// Installs `packages` at Kubernetes release `version` (moving them from another version) and keeps them
    /// there (held or excluded from upgrades).
    func installKubernetesPackages(_ packages: [String], version: String, _ pm: PackageManager) -> [String]
    /// Removes `packages` and the repository files; never fails (a host half set up is purged too).
    func purgeKubernetes(_ packages: [String], _ pm: PackageManager) -> [String]

    /// Read-only shell that prints every version of `package` the Kubernetes repository of `minor` offers, as
    /// the host's package manager lists them (`apt-cache madison`, `dnf list --showduplicates`). It reads the
    /// repository through a configuration of its own in a temporary directory, so it works before the
    /// repository step ran and changes none of the host's sources, lists or caches; preflight runs it.
    func repositoryVersionsQuery(_ package: String, minor: String) -> String
    /// The Kubernetes versions (`1.35.5`) of `package` in the output of `repositoryVersionsQuery`.
    func parseRepositoryVersions(_ output: String, package: String) -> [String]
}

extension NodeOS {
    public func supports(_ osID: String, version: String) -> Bool {
        releases.contains { $0.id == osID && $0.versions.contains(version) }
    }
}

/// The operating systems bootstrap installs on.
public enum NodeOSes {
    /// Every implementation; the facts script tries their package queries in this order.
    public static let all: [any NodeOS] = [AptNodeOS(), DnfNodeOS()]

    /// The implementation for a host with this `/etc/os-release` `ID` (whatever its version; preflight refuses
    /// an unsupported one), or nil.
    public static func `for`(osID: String) -> (any NodeOS)? {
        all.first { $0.releases.contains { $0.id == osID } }
    }

    public static func `for`(_ facts: HostFacts) -> (any NodeOS)? { self.for(osID: facts.osID) }

    /// Every supported release.
    public static var releases: [OSRelease] { all.flatMap(\.releases) }

    /// Is this release supported?
    public static func supports(_ facts: HostFacts) -> Bool {
        self.for(facts)?.supports(facts.osID, version: facts.osVersion) ?? false
    }

    /// `Ubuntu 22.04/24.04, Debian 12, Amazon Linux 2023`, for messages.
    public static var supportedList: String {
        releases.map { "\($0.name) \($0.versions.joined(separator: "/"))" }.joined(separator: ", ")
    }

    /// The facts script's package query: the first implementation whose `detect` holds answers.
    public static func packageQuery(_ packages: [String]) -> String {
        var lines: [String] = []
        for (i, os) in all.enumerated() {
            lines.append("\(i == 0 ? "if" : "elif") \(os.detect); then")
            lines.append("  " + os.packageQuery(packages))
        }
        lines.append("fi")
        return lines.joined(separator: "\n")
    }
}
