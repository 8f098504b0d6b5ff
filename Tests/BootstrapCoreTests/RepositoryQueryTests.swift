import Testing
@testable import BootstrapCore

/// The preflight question "which kubeadm releases does the repository of this minor have?", per package manager.
@Suite struct RepositoryQueryTests {
    @Test func aptReadsMadison() {
        let os = AptNodeOS()
        let out = """
               kubeadm | 1.35.5-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages
               kubeadm | 1.35.4-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages
               kubeadm | 1.35.0-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages
               kubectl | 1.35.9-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages
            N: Unable to locate package nothing

            """
        #expect(os.parseRepositoryVersions(out, package: "kubeadm") == ["1.35.5", "1.35.4", "1.35.0"])
    }

    @Test func dnfReadsListShowDuplicates() {
        let os = DnfNodeOS()
        let out = """
            Installed Packages
            kubeadm.x86_64                          1.35.7-150500.1.1              @kubernetes
            Available Packages
            kubeadm.x86_64                          1.35.0-150500.1.1              bootstrap-kubernetes-1.35
            kubeadm.x86_64                          0:1.35.1-150500.1.1            bootstrap-kubernetes-1.35
            kubelet.x86_64                          1.35.9-150500.1.1              bootstrap-kubernetes-1.35

            """
        // an installed package the repository may no longer carry is not the repository's
        #expect(os.parseRepositoryVersions(out, package: "kubeadm") == ["1.35.0", "1.35.1"])
    }

    @Test(arguments: NodeOSes.all.map(\.id))
    func theQueryLeavesTheHostsConfigurationAlone(id: String) throws {
        let os = try #require(NodeOSes.all.first { $0.id == id })
        let q = os.repositoryVersionsQuery("kubeadm", minor: "1.35")
        #expect(q.contains(os.repositoryBase(minor: "1.35")))
        // everything it writes is under its temporary directory, removed when it ends
        #expect(q.contains("trap 'rm -rf \"$d\"' EXIT"))
        for file in os.repositoryFiles { #expect(!q.contains(file)) }
        #expect(!q.contains("/etc/") && !q.contains(" install "))
        #expect(q.contains(id == "apt" ? "madison 'kubeadm'" : "list --showduplicates 'kubeadm'")
                || q.contains(id == "apt" ? "madison kubeadm" : "list --showduplicates kubeadm"))
    }
}
