import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// A node upgraded by hand makes a mixed-version cluster (issue 13): drift in `plan --refresh`, and `apply`
    /// brings the node back to the plan's version.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct MixedVersionTests {
        @Test func aWorkerUpgradedByHandIsDriftAndApplyPutsItBack() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.116")
                defer { lab.down() }
                let plan = try lab.writePlan(lab.plan(workers: 1).replacingOccurrences(of: "\"1.34.1\"", with: "\"1.35.5\""))
                let create = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(create.status == 0, "\(create.all)")

                // By hand on worker-1: the 1.36 repository, kubelet 1.36.1, restarted (newer than the API server:
                // it never registers its status).
                let byHand = try lab.exec(2, """
                    sed -i 's#/v1\\.35/deb/#/v1.36/deb/#' /etc/apt/sources.list.d/kubernetes.list && apt-get update -q >/dev/null \
                    && apt-mark unhold kubelet >/dev/null && apt-get install -y -q kubelet=1.36.1-1.1 >/dev/null \
                    && systemctl restart kubelet
                    """)
                #expect(byHand.status == 0, "\(byHand.all)")

                let refreshed = try lab.bootstrap(["plan", "-f", plan, "--refresh", "--detailed-exitcode"])
                #expect(refreshed.status == 2, "\(refreshed.all)")
                #expect(refreshed.stdout.contains("~ worker-1: drift: the kubelet is 1.36.1, newer than the API server (1.35.5), which the version skew policy never allows"),
                        "\(refreshed.stdout)")

                let fix = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(fix.status == 0, "\(fix.all)")
                #expect(fix.all.contains("the kubelet is 1.36.1, newer than the API server"), "\(fix.all)")
                #expect(try lab.exec(2, "dpkg-query -W -f='${Version}' kubelet").stdout == "1.35.5-1.1")
                #expect(try lab.exec(2, "cat /etc/apt/sources.list.d/kubernetes.list").stdout.contains("/v1.35/deb/"))
                let nodes = try lab.kubectl("get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion} {end}'")
                #expect(nodes.stdout.split(separator: " ").sorted() == ["cp-1=v1.35.5", "worker-1=v1.35.5"], "\(nodes.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                // Nothing left to do.
                let again = try lab.bootstrap(["plan", "-f", plan, "--refresh", "--detailed-exitcode"])
                #expect(again.status == 0, "\(again.all)")
            }
        }
    }
}
