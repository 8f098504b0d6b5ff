import BootstrapTestSupport
import Foundation
import Testing
@testable import BootstrapCore

/// The CNI's images, pulled ahead by the images step on every node: which ones, in the step's hash, and a
/// script that pulls them beside kubeadm's and fails naming them.
@Suite struct CNIImagesTests {
    @Test func everyPinnedCNIChartHasItsNodeImages() {
        for cni in ClusterPlan.CNI.allCases {
            let images = Releases.cniNodeImages(ClusterPlan.Network(cni: cni))
            #expect(!images.isEmpty, "no images for \(cni) at its pinned chart version: add them to Releases.cniNodeImages")
        }
        #expect(Releases.cniNodeImages(ClusterPlan.Network(cni: .flannel))
                == ["docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2", "docker.io/flannel/flannel:v0.26.1"])
        #expect(Releases.cniNodeImages(ClusterPlan.Network(cni: .calico)).allSatisfy {
            $0.hasPrefix("docker.io/calico/") && $0.hasSuffix(":\(Releases.tigeraOperator.version)")
        })
    }

    @Test func theRecipeQuotesTheImagesAndWaitsForThem() {
        let cmd = NodeRecipes.pullImages(controlPlane: true, version: "1.34.1", cniImages: ["docker.io/x/y:v1", "it's"])
        #expect(cmd.script.contains("for image in docker.io/x/y:v1 'it'\\''s'; do crictl"))
        #expect(cmd.stepNames == ["crictl pull (the CNI's images)", "kubeadm config images pull --kubernetes-version v1.34.1 >/dev/null",
                                  "crictl pull (the CNI's images: docker.io/x/y:v1, it's)"])
        // Without CNI images, the recipe is what it was.
        #expect(NodeRecipes.pullImages(controlPlane: false, version: "1.34.1").stepNames
                == ["kubeadm config images list --kubernetes-version v1.34.1", "crictl pull (pause, kube-proxy)"])
    }

    /// Runs the worker's recipe against a fake kubeadm and crictl that log what they pull.
    func run(failing: String?) async throws -> (ProgramOutput, [String], ShellCommand) {
        let dir = NSTemporaryDirectory() + "bootstrap-images-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = dir + "/pulled"
        try "#!/bin/sh\nprintf 'registry.k8s.io/kube-proxy:v1.34.1\\nregistry.k8s.io/pause:3.10.1\\nregistry.k8s.io/etcd:3.6\\n'\n"
            .write(toFile: dir + "/kubeadm", atomically: true, encoding: .utf8)
        try "#!/bin/sh\nfor a; do last=$a; done\nsleep 0.1\n[ \"$last\" = \"\(failing ?? "")\" ] && { echo \"pull $last: not found\" >&2; exit 1; }\necho \"$last\" >> \(log)\n"
            .write(toFile: dir + "/crictl", atomically: true, encoding: .utf8)
        for tool in ["kubeadm", "crictl"] {
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir + "/" + tool)
        }
        let cni = Releases.cniNodeImages(ClusterPlan.Network(cni: .flannel))
        let cmd = NodeRecipes.pullImages(controlPlane: false, version: "1.34.1", cniImages: cni)
        let env = Program.environment(adding: ["PATH": dir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")])
        let out = try await Program.runAsync("/bin/sh", ["-c", cmd.script], environment: env)
        let pulled = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        return (out, pulled, cmd)
    }

    @Test func theScriptPullsTheCNIsImagesBesideTheNodesOwn() async throws {
        let (out, pulled, _) = try await run(failing: nil)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(Set(pulled) == ["registry.k8s.io/kube-proxy:v1.34.1", "registry.k8s.io/pause:3.10.1",
                                "docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2", "docker.io/flannel/flannel:v0.26.1"])
        #expect(pulled.count == 4)
    }

    @Test func aFailedCNIPullFailsTheScriptNamingIt() async throws {
        let (out, pulled, cmd) = try await run(failing: "docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2")
        #expect(out.status != 0)
        let (step, stderr) = cmd.failedStep(in: out.stderr)
        #expect(step == "crictl pull (the CNI's images: docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2, docker.io/flannel/flannel:v0.26.1)")
        #expect(stderr.contains("not found"))
        // The node's own images were pulled all the same.
        #expect(pulled.contains("registry.k8s.io/kube-proxy:v1.34.1"))
    }

    @Test func theImagesStepHashFollowsTheCNI() throws {
        var plan = ClusterPlan(metadata: .init(name: "c"), spec: .init(
            kubernetes: .init(version: "1.34.1"),
            hosts: [.init(name: "cp", address: "10.0.0.1", role: .controlPlane)]))
        let host = plan.spec.hosts[0]
        func hashes() -> [StepName: String] {
            Dictionary(uniqueKeysWithValues: StepCatalogue.steps(for: host, in: plan).map { ($0.name, $0.inputHash) })
        }
        let flannel = hashes()
        plan.spec.network = ClusterPlan.Network(cni: .calico)
        let calico = hashes()
        #expect(flannel[.images] != calico[.images])
        // The other host steps before init keep theirs.
        #expect(flannel[.prepare] == calico[.prepare] && flannel[.kubernetesPackages] == calico[.kubernetesPackages])
    }
}
