import Foundation
import Testing
import BootstrapTestSupport
@testable import BootstrapCore

/// Every host recipe for every supported OS release: which package manager it drives, with which package
/// names and versions, that install and purge agree on the repository files, and that the shell parses.
@Suite struct NodeOSRecipeTests {
    /// Every supported release as a host's facts would name it.
    static let releases: [(id: String, version: String)] = NodeOSes.releases.flatMap { r in r.versions.map { (r.id, $0) } }

    static func facts(_ id: String, _ version: String) -> HostFacts {
        HostFacts(hostname: "h", osID: id, osVersion: version, architecture: "amd64", cpus: 2, memoryMB: 4096,
                  swapOn: false, machineID: "m", productUUID: "u")
    }

    /// Every recipe a node runs, named.
    static func recipes(_ os: any NodeOS) -> [(String, ShellCommand)] {
        [
            ("facts", NodeRecipes.facts),
            ("prepare", NodeRecipes.prepare),
            ("containerd", NodeRecipes.containerd(os, version: nil)),
            ("containerd pinned", NodeRecipes.containerd(os, version: "1.7.27")),
            ("kubernetes-repo", NodeRecipes.kubernetesRepo(os, minor: "1.34")),
            ("kubernetes-repo refreshed", NodeRecipes.kubernetesRepo(os, minor: "1.34", refresh: true)),
            ("kubernetes-packages", NodeRecipes.kubernetesPackages(os, version: "1.34.1")),
            ("kubernetes-packages pinned", NodeRecipes.kubernetesPackages(os, version: "1.34.1", containerdVersion: "1.7.27")),
            ("images control plane", NodeRecipes.pullImages(controlPlane: true, version: "1.34.1")),
            ("images worker", NodeRecipes.pullImages(controlPlane: false, version: "1.34.1")),
            ("init", NodeRecipes.kubeadmInit()),
            ("join", NodeRecipes.kubeadmJoin()),
            ("reset", NodeRecipes.reset(os, purge: false)),
            ("reset --purge", NodeRecipes.reset(os, purge: true)),
            ("helm", HelmRecipes.install()),
        ]
    }

    @Test func theSupportedReleasesAreTheDocumentedOnes() {
        #expect(Self.releases.map { "\($0.id) \($0.version)" } == ["ubuntu 22.04", "ubuntu 24.04", "debian 12", "amzn 2023"])
        #expect(NodeOSes.supportedList == "Ubuntu 22.04/24.04, Debian 12, Amazon Linux 2023")
        for (id, version) in Self.releases { #expect(NodeOSes.supports(Self.facts(id, version))) }
        #expect(!NodeOSes.supports(Self.facts("ubuntu", "20.04")))
        #expect(!NodeOSes.supports(Self.facts("amzn", "2")))
        #expect(NodeOSes.for(osID: "centos") == nil && !NodeOSes.supports(Self.facts("centos", "9")))
    }

    @Test func theOSIsChosenFromTheFacts() {
        let chosen = Self.releases.map { NodeOSes.for(Self.facts($0.id, $0.version))?.id }
        #expect(chosen == ["apt", "apt", "apt", "dnf"])
        // An unsupported version of a known OS still gets its package manager (for purging it); preflight refuses it.
        #expect(NodeOSes.for(Self.facts("ubuntu", "20.04"))?.id == "apt")
    }

    @Test(arguments: releases.map { "\($0.id) \($0.version)" })
    func everyRecipeForEveryRelease(_ release: String) async throws {
        let parts = release.split(separator: " ").map(String.init)
        let os = try #require(NodeOSes.for(Self.facts(parts[0], parts[1])))
        let apt = os.id == "apt"
        for (name, command) in Self.recipes(os) {
            // The shell parses it.
            let parsed = try await Program.runAsync("/bin/sh", ["-n", "-c", command.script])
            let (status, stderr) = (parsed.status, parsed.stderr)
            #expect(status == 0, "\(release) \(name): \(stderr)")
            // Only this OS's package manager runs (the facts script asks each OS in turn, read-only).
            if name != "facts" {
                let installs = name.hasPrefix("containerd") || name.hasPrefix("kubernetes-packages")
                    || name == "kubernetes-repo refreshed" || name == "reset --purge"
                #expect(command.script.contains("apt-get ") == (apt && installs), "\(release) \(name)")
                #expect(command.script.contains("dnf ") == (!apt && installs), "\(release) \(name)")
            }
        }
        let recipes = Dictionary(uniqueKeysWithValues: Self.recipes(os))
        let containerd = recipes["containerd"]!.script, pinned = recipes["containerd pinned"]!.script
        let repo = recipes["kubernetes-repo"]!.script, packages = recipes["kubernetes-packages"]!.script
        let refreshed = recipes["kubernetes-repo refreshed"]!.script
        let packagesPinned = recipes["kubernetes-packages pinned"]!.script
        let purge = recipes["reset --purge"]!.script, reset = recipes["reset"]!.script
        // The repository step writes files only (the packages step reads the index); an upgrade's refreshes it.
        #expect(!repo.contains("apt-get") && !repo.contains("dnf "))
        // containerd is installed by the containerd step only when it is not there at the plan's version.
        // (the shown text: the guard quotes the script it runs)
        #expect(recipes["containerd"]!.shown.contains("if ! \(os.containerdInstalled(version: nil)); then"))
        #expect(recipes["containerd pinned"]!.shown.contains("if ! \(os.containerdInstalled(version: "1.7.27")); then"))
        // One transaction: containerd joins the Kubernetes packages unless installed.
        #expect(recipes["kubernetes-packages"]!.shown.contains(
            "if ! \(os.containerdInstalled(version: nil)); then set -- containerd \"$@\"; fi"))
        if apt {
            #expect(containerd.contains("apt-get -o DPkg::Lock::Timeout=300 update -q") && containerd.contains("install -y -q containerd"))
            #expect(pinned.contains("install -y -q containerd=1.7.27"))
            #expect(containerd.contains("dpkg --configure -a"))
            #expect(repo.contains("https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key"))
            #expect(repo.contains("deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /"))
            #expect(refreshed.contains("apt-get -o DPkg::Lock::Timeout=300 update -q"))
            #expect(packages.components(separatedBy: " update -q").count == 2, "one index update")
            #expect(packages.components(separatedBy: " install ").count == 2, "one transaction")
            #expect(packages.contains("set -- kubelet=1.34.1-1.1 kubeadm=1.34.1-1.1 kubectl=1.34.1-1.1"))
            #expect(packages.contains("apt-get -o DPkg::Lock::Timeout=300 install -y -q --allow-downgrades --allow-change-held-packages \"$@\""))
            #expect(packagesPinned.contains("set -- containerd=1.7.27 \"$@\""))
            #expect(packages.contains("apt-mark hold kubelet kubeadm kubectl"))
            #expect(purge.contains("apt-mark unhold kubelet kubeadm kubectl") && purge.contains("purge -y -q kubelet kubeadm kubectl"))
        } else {
            #expect(containerd.contains("dnf --setopt=exit_on_lock=True install -y -q containerd"))
            #expect(pinned.contains("install -y -q containerd-1.7.27"))
            #expect(containerd.contains("/var/lib/dnf/rpmdb_lock.pid"))
            #expect(repo.contains("baseurl=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/"))
            #expect(repo.contains("gpgkey=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/repodata/repomd.xml.key"))
            #expect(repo.contains("exclude=kubelet kubeadm kubectl") && refreshed.contains("makecache -q"))
            // dnf reads the new repository's metadata in the transaction itself.
            #expect(!packages.contains("makecache") && packages.components(separatedBy: " install ").count == 2)
            #expect(packages.contains("set -- kubelet-1.34.1 kubeadm-1.34.1 kubectl-1.34.1"))
            #expect(packages.contains("dnf --setopt=exit_on_lock=True install -y -q --disableexcludes=kubernetes \"$@\""))
            #expect(packagesPinned.contains("set -- containerd-1.7.27 \"$@\""))
            #expect(purge.contains("dnf --setopt=exit_on_lock=True remove -y -q kubelet kubeadm kubectl"))
        }
        #expect(os.kubernetesPackageVersion("1.34.1") == (apt ? "1.34.1-1.1" : "1.34.1"))
        // What the repository step writes, purge removes; a plain reset leaves the packages and repository.
        #expect(!os.repositoryFiles.isEmpty)
        for file in os.repositoryFiles {
            #expect(repo.contains(file), "\(release): the repository step writes \(file)")
            #expect(purge.contains(file), "\(release): purge removes \(file)")
            #expect(!reset.contains(file), "\(release): reset keeps \(file)")
        }
        #expect(packages.contains("systemctl enable kubelet"))
    }

    /// The packages step's transaction and the containerd step's condition, run for real against fake
    /// package tools: containerd joins the Kubernetes packages when the host has none (a removed one whose
    /// configuration is left counts as none), never when it is installed (whatever its version: changing it is
    /// the containerd step's, which drains the node first); the containerd step installs only when the
    /// installed version is not the plan's.
    @Test(arguments: ["apt", "dnf"])
    func oneTransactionInstallsContainerdOnlyWhenMissing(_ id: String) async throws {
        let os = try #require(NodeOSes.all.first { $0.id == id })
        // $STATE: "installed 1.7.20", "config-files 1.7.27" or empty (never installed).
        let dpkgQuery = #"""
            #!/bin/sh
            [ "$1" = -W ] || exit 2
            fmt=$2
            [ -n "$STATE" ] || { echo "dpkg-query: no packages found matching containerd" >&2; exit 1; }
            set -- $STATE
            case $fmt in *'${Version}'*) printf '%s %s' "$1" "$2" ;; *) printf '%s' "$1" ;; esac
            """#
        let rpm = #"""
            #!/bin/sh
            case $STATE in
              installed*) v=${STATE#installed }; [ "$2" = --qf ] && printf '%s %s-1.amzn2023' "$v" "$v"; exit 0 ;;
              *) echo "package containerd is not installed"; exit 1 ;;
            esac
            """#
        let logger = "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> \"$LOG\"\n"
        let bin = NSTemporaryDirectory() + "bootstrap-tx-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: bin) }
        for (name, text) in [("dpkg-query", dpkgQuery), ("rpm", rpm), ("apt-get", logger), ("apt-mark", logger),
                             ("dnf", logger)] {
            #expect(FileManager.default.createFile(atPath: "\(bin)/\(name)", contents: Data(text.utf8),
                                                   attributes: [.posixPermissions: 0o755]))
        }
        for tool in ["basename"] {
            guard let real = ["/usr/bin/\(tool)", "/bin/\(tool)"].first(where: FileManager.default.isExecutableFile) else { continue }
            try FileManager.default.createSymbolicLink(atPath: "\(bin)/\(tool)", withDestinationPath: real)
        }
        func run(_ script: String, state: String) async throws -> (out: String, log: [String]) {
            let log = bin + "/log-\(UUID().uuidString)"
            let ran = try await Program.runAsync("/usr/bin/env", ["PATH=\(bin)", "STATE=\(state)", "LOG=\(log)",
                                                                  "/bin/sh", "-c", script])
            #expect(ran.status == 0, "\(ran.stderr)")
            let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            return (ran.stdout, lines)
        }
        let pm = os.packageManager(lockWait: 150)
        let apt = id == "apt"
        let k8s = apt ? "kubelet=1.34.1-1.1 kubeadm=1.34.1-1.1 kubectl=1.34.1-1.1" : "kubelet-1.34.1 kubeadm-1.34.1 kubectl-1.34.1"
        let install = apt ? "apt-get -o DPkg::Lock::Timeout=150 install -y -q --allow-downgrades --allow-change-held-packages"
                          : "dnf --setopt=exit_on_lock=True install -y -q --disableexcludes=kubernetes"
        let before = apt ? ["apt-get -o DPkg::Lock::Timeout=150 update -q"] : []
        let after = apt ? ["apt-mark hold kubelet kubeadm kubectl"] : []
        let tx = ShellCommand(steps: os.installNodePackages(NodeRecipes.kubernetesPackages, version: "1.34.1",
                                                            containerdVersion: "1.7.27", pm)).script
        let pinned = apt ? "containerd=1.7.27" : "containerd-1.7.27"
        #expect(try await run(tx, state: "").log == before + ["\(install) \(pinned) \(k8s)"] + after)
        #expect(try await run(tx, state: "installed 1.7.20").log == before + ["\(install) \(k8s)"] + after)
        if apt {
            #expect(try await run(tx, state: "config-files 1.7.27").log == before + ["\(install) \(pinned) \(k8s)"] + after)
        }
        func holds(_ version: String?, _ state: String) async throws -> Bool {
            try await run("if \(os.containerdInstalled(version: version)); then echo yes; else echo no; fi", state: state).out == "yes\n"
        }
        #expect(try await holds(nil, "installed 1.7.20"))
        #expect(try await !holds(nil, ""))
        #expect(try await holds("1.7.27", "installed 1.7.27"))
        #expect(try await !holds("1.7.27", "installed 1.7.20"))
        #expect(try await !holds("1.7.2", "installed 1.7.27"))
        if apt {
            #expect(try await !holds(nil, "config-files 1.7.27"))
        } else {
            #expect(try await holds("1.7.27-1.amzn2023", "installed 1.7.27"))
        }
    }

    /// Purging needs the OS; a host whose facts were never gathered is reset without it.
    @Test func resetWithoutAnOSPurgesNothing() {
        let script = NodeRecipes.reset(nil, purge: true).script
        #expect(script.contains("kubeadm reset -f"))
        #expect(!script.contains("apt-get") && !script.contains("dnf ") && !script.contains("rm -f /etc"))
    }

    /// Runs the facts script for real with a PATH of fake package tools: the first OS whose tool is there
    /// answers, and the answer parses into the installed versions.
    @Test func theFactsScriptAsksThePackageManagerOfTheHost() async throws {
        let dpkgQuery = #"""
            #!/bin/sh
            # dpkg-query -W -f=FORMAT PKG...: kubeadm, kubelet installed; containerd known, not installed
            [ "$1" = -W ] || exit 2
            fmt=${2#-f=}; shift 2
            for p in "$@"; do
              case $p in kubeadm|kubelet) v=1.34.1-1.1 ;; containerd) v= ;; *) echo "dpkg-query: no packages found matching $p" >&2; continue ;; esac
              printf "$(printf '%s' "$fmt" | sed "s/\${Package}/$p/; s/\${Version}/$v/")"
            done
            """#
        let rpm = #"""
            #!/bin/sh
            # rpm -q --qf FORMAT PKG...: kubeadm, kubelet installed
            [ "$1 $2" = "-q --qf" ] || exit 2
            fmt=$3; shift 3; rc=0
            for p in "$@"; do
              case $p in
                kubeadm|kubelet) printf "$(printf '%s' "$fmt" | sed "s/%{NAME}/$p/; s/%{VERSION}/1.34.1/")" ;;
                *) echo "package $p is not installed"; rc=1 ;;
              esac
            done
            exit $rc
            """#
        for (tools, want) in [(["dpkg-query": dpkgQuery, "rpm": rpm], "1.34.1-1.1"), (["rpm": rpm], "1.34.1")] {
            let bin = NSTemporaryDirectory() + "bootstrap-facts-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: bin) }
            for (name, text) in tools {
                #expect(FileManager.default.createFile(atPath: "\(bin)/\(name)", contents: Data(text.utf8), attributes: [.posixPermissions: 0o755]))
            }
            for tool in ["uname", "awk", "grep", "sed", "cat", "nproc"] {
                guard let real = ["/usr/bin/\(tool)", "/bin/\(tool)"].first(where: FileManager.default.isExecutableFile) else { continue }
                try FileManager.default.createSymbolicLink(atPath: "\(bin)/\(tool)", withDestinationPath: real)
            }
            let ran = try await Program.runAsync("/usr/bin/env", ["PATH=\(bin)", "/bin/sh", "-c", NodeRecipes.facts.script])
            let (status, stdout, stderr) = (ran.status, ran.stdout, ran.stderr)
            #expect(status == 0, "\(stderr)")
            let facts = try #require(NodeRecipes.parseFacts(stdout), "\(stdout)")
            #expect(facts.packages == ["kubeadm": want, "kubelet": want], "\(tools.keys.sorted()): \(stdout)")
        }
    }

    /// kubeadm's v1beta4 configuration needs Kubernetes 1.31 or later: every supported release is.
    @Test func everySupportedKubernetesTakesTheV1beta4Config() {
        for minor in KubernetesReleases.minors {
            let parts = minor.split(separator: ".").compactMap { Int($0) }
            #expect(parts.count == 2 && (parts[0] > 1 || parts[1] >= 31), "\(minor)")
        }
        #expect(KubeadmConfig.apiVersion == "kubeadm.k8s.io/v1beta4")
    }
}
