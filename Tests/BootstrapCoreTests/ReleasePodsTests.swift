import Testing
@testable import BootstrapCore

struct ReleasePodsTests {
    /// kubectl's custom-columns table, as `HelmRecipes.releaseWorkloads` asks for it.
    static let table = """
        Deployment    monitoring     kps-operator                      kps       monitoring     1        1        <none>   <none>
        Deployment    monitoring     kps-grafana                       kps       monitoring     2        <none>   <none>   <none>
        StatefulSet   monitoring     prometheus-kps-prometheus         kps       monitoring     1        <none>   <none>   <none>
        DaemonSet     monitoring     kps-prometheus-node-exporter      kps       monitoring     <none>   <none>   3        2
        Deployment    logging        kps                               kps       logging        1        1        <none>   <none>
        Deployment    monitoring     other                             other     monitoring     4        4        <none>   <none>
        Deployment    kube-system    coredns                           <none>    <none>         2        2        <none>   <none>
        DaemonSet     kube-flannel   kube-flannel-ds                   flannel   kube-flannel   <none>   <none>   0        0
        """

    @Test func countsTheReleasesWorkloadsPodsReadyOfWanted() {
        // 1/1 operator, 0/2 grafana (no readyReplicas yet), 0/1 prometheus, 2/3 node exporter; the release of the
        // same name in another namespace, another release and objects Helm did not make are not counted.
        #expect(ReleasePods.count(Self.table, release: "kps", namespace: "monitoring") == .init(ready: 3, total: 7))
        #expect(ReleasePods.count(Self.table, release: "kps", namespace: "logging") == .init(ready: 1, total: 1))
        #expect(ReleasePods.count(Self.table, release: "flannel", namespace: "kube-flannel") == .init(ready: 0, total: 0))
        #expect(ReleasePods.count(Self.table, release: "absent", namespace: "x") == .init(ready: 0, total: 0))
        #expect(ReleasePods.count("", release: "kps", namespace: "monitoring") == .init(ready: 0, total: 0))
    }

    @Test func aRollingUpdatesExtraPodsDoNotCountAboveTheTotalAndUnsetReplicasMeanOne() {
        let t = """
            Deployment  ns  a  r  ns  2       3       <none>  <none>
            Deployment  ns  b  r  ns  <none>  <none>  <none>  <none>
            """
        #expect(ReleasePods.count(t, release: "r", namespace: "ns") == .init(ready: 2, total: 3))
    }

    @Test func notKubectlsTableIsNoCount() {
        #expect(ReleasePods.count("error: the server doesn't have a resource type \"deployments\"", release: "r",
                                  namespace: "ns") == nil)
        #expect(ReleasePods.count("Deployment ns a r ns 1", release: "r", namespace: "ns") == nil)
    }

    @Test func theMessageSaysHowManyPodsAreReady() {
        #expect(ReleasePods.message(namespace: "monitoring", release: "kube-prometheus-stack", .init(ready: 3, total: 5))
                == "release monitoring/kube-prometheus-stack: 3 of 5 pods ready")
        #expect(ReleasePods.message(namespace: "m", release: "r", .init(ready: 0, total: 1)) == "release m/r: 0 of 1 pod ready")
        #expect(ReleasePods.message(namespace: "m", release: "r", .init(ready: 0, total: 0)) == "release m/r: no pods yet")
        #expect(ReleasePods.message(namespace: "m", release: "r", nil)
                == "release m/r: waiting for its pods to be Ready (helm --wait)")
    }

    @Test func theCommandAsksForTheColumnsOnlyWithTheAnnotationKeysEscaped() {
        let script = HelmRecipes.releaseWorkloads.script
        #expect(script.hasPrefix("kubectl --kubeconfig /etc/kubernetes/admin.conf get deployments,statefulsets,daemonsets --all-namespaces --no-headers -o "))
        // One shell word, single-quoted: the backslashes reach kubectl's JSONPath as written.
        #expect(script.hasSuffix(#"'custom-columns=KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name,RELEASE:.metadata.annotations.meta\.helm\.sh/release-name,RELEASE_NAMESPACE:.metadata.annotations.meta\.helm\.sh/release-namespace,REPLICAS:.spec.replicas,READY_REPLICAS:.status.readyReplicas,DESIRED_SCHEDULED:.status.desiredNumberScheduled,NUMBER_READY:.status.numberReady'"#))
        #expect(!script.contains("-o json") && !script.contains("-o yaml"))
    }
}
