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
            ("kubernetes-packages", NodeRecipes.kubernetesPackages(os, version: "1.34.1")),
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
                let installs = name.hasPrefix("containerd") || name.hasPrefix("kubernetes") || name == "reset --purge"
                #expect(command.script.contains("apt-get ") == (apt && installs), "\(release) \(name)")
                #expect(command.script.contains("dnf ") == (!apt && installs), "\(release) \(name)")
            }
        }
        let recipes = Dictionary(uniqueKeysWithValues: Self.recipes(os))
        let containerd = recipes["containerd"]!.script, pinned = recipes["containerd pinned"]!.script
        let repo = recipes["kubernetes-repo"]!.script, packages = recipes["kubernetes-packages"]!.script
        let purge = recipes["reset --purge"]!.script, reset = recipes["reset"]!.script
        if apt {
            #expect(containerd.contains("apt-get -o DPkg::Lock::Timeout=300 update -q") && containerd.contains("install -y -q containerd"))
            #expect(pinned.contains("install -y -q containerd=1.7.27"))
            #expect(containerd.contains("dpkg --configure -a"))
            #expect(repo.contains("https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key"))
            #expect(repo.contains("deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /"))
            #expect(packages.contains("--allow-change-held-packages kubelet=1.34.1-1.1 kubeadm=1.34.1-1.1 kubectl=1.34.1-1.1"))
            #expect(packages.contains("apt-mark hold kubelet kubeadm kubectl"))
            #expect(purge.contains("apt-mark unhold kubelet kubeadm kubectl") && purge.contains("purge -y -q kubelet kubeadm kubectl"))
        } else {
            #expect(containerd.contains("dnf --setopt=exit_on_lock=True install -y -q containerd"))
            #expect(pinned.contains("install -y -q containerd-1.7.27"))
            #expect(containerd.contains("/var/lib/dnf/rpmdb_lock.pid"))
            #expect(repo.contains("baseurl=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/"))
            #expect(repo.contains("gpgkey=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/repodata/repomd.xml.key"))
            #expect(repo.contains("exclude=kubelet kubeadm kubectl") && repo.contains("makecache -q"))
            #expect(packages.contains("install -y -q --disableexcludes=kubernetes kubelet-1.34.1 kubeadm-1.34.1 kubectl-1.34.1"))
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
