@testable import BootstrapCore
import BootstrapTestSupport
import Foundation
import Testing

/// What `bootstrap restore` decides before it runs: which archives it refuses, what the state becomes.
struct RestoreTests {
    static func manifest(_ p: ClusterPlan, _ s: ClusterState, kubernetes: String? = "1.34.1") -> BackupManifest {
        BackupManifest(cluster: p.name, lineage: s.lineage, kubernetesVersion: kubernetes, etcdVersion: "3.6.4",
                       members: ["cp-1"], takenOn: "cp-1", createdAt: Date(timeIntervalSince1970: 1_795_291_240))
    }

    @Test func refusesAnotherClusterAnotherLineageAndAnotherMinor() throws {
        let p = try plan(basePlanYAML)
        let s = appliedState(p)
        #expect(RestoreChecks.refusal(Self.manifest(p, s), plan: p, state: s) == nil)
        // Another patch of the same minor is fine.
        #expect(RestoreChecks.refusal(Self.manifest(p, s, kubernetes: "1.34.7"), plan: p, state: s) == nil)

        var other = Self.manifest(p, s)
        other.cluster = "prod"
        #expect(RestoreChecks.refusal(other, plan: p, state: s)?.contains("the cluster prod, not demo") == true)

        var lineage = Self.manifest(p, s)
        lineage.lineage = "99999999-0000-0000-0000-000000000000"
        let why = try #require(RestoreChecks.refusal(lineage, plan: p, state: s))
        #expect(why.contains("another cluster named demo") && why.contains(s.lineage) && why.contains(lineage.lineage))

        let minor = try #require(RestoreChecks.refusal(Self.manifest(p, s, kubernetes: "1.33.5"), plan: p, state: s))
        #expect(minor.contains("Kubernetes 1.33.5") && minor.contains("1.34.1"))
        #expect(RestoreChecks.refusal(Self.manifest(p, s, kubernetes: nil), plan: p, state: s) != nil)

        var etcd = Self.manifest(p, s)
        etcd.etcdVersion = "3.6.4; rm -rf /"
        #expect(RestoreChecks.refusal(etcd, plan: p, state: s)?.contains("not a version") == true)
    }

    @Test func theStateForgetsWhatTheSnapshotLacksAndRecordsTheRestore() throws {
        let p = try plan(basePlanYAML + "\n  addons: { metricsServer: { enabled: true } }\n")
        var s = appliedState(p)
        s.manifests["Namespace/my-app"] = ManifestRecord(file: "app.yaml", hash: "h1", apiVersion: "v1")
        s.manifests["Deployment/my-app/my-app"] = ManifestRecord(file: "app.yaml", hash: "h2", apiVersion: "apps/v1")
        s.cluster.secrets["certificateKey"] = SecretRecord(value: Secret("k"), expiresAt: Date(timeIntervalSince1970: 1_900_000_000))
        #expect(s.addons.count == 2)
        let flannel = try #require(s.addons.values.first { $0.chart == "flannel" })
        let record = RestoreRecord(path: "/b/x.bootstrap-backup", sha256: "ab", snapshotCreatedAt: Date(timeIntervalSince1970: 1_795_000_000),
                                   restoredAt: Date(timeIntervalSince1970: 1_795_291_240), restoredOn: "cp-1")
        let r = RestoreChecks.restoredState(s, record: record, releasesPresent: [RestoreChecks.releaseKey(flannel)],
                                            objectsPresent: ["Namespace/my-app"])
        #expect(r.restores == [record])
        #expect(r.addons.values.map(\.chart) == ["flannel"])
        #expect(Array(r.manifests.keys) == ["Namespace/my-app"])
        #expect(r.cluster.secrets["certificateKey"]?.expiresAt == record.restoredAt)
        #expect(r.hosts == s.hosts && r.lineage == s.lineage)

        // The state round-trips with its restores; one without them has no `restores` key.
        let data = try JSONEncoder().encode(r)
        #expect(try JSONDecoder().decode(ClusterState.self, from: data).restores == [record])
        #expect(!String(decoding: try JSONEncoder().encode(s), as: UTF8.self).contains("restores"))
    }

    @Test func releasesFromHelmList() {
        let json = #"[{"name":"flannel","namespace":"kube-flannel","revision":"1","status":"deployed","chart":"flannel-v0.26.1","app_version":"v0.26.1"}]"#
        #expect(RestoreChecks.parseReleases(Data(json.utf8)) == ["kube-flannel/flannel flannel-v0.26.1"])
        #expect(RestoreChecks.parseReleases(Data("[]".utf8)) == [])
        #expect(RestoreChecks.parseReleases(Data("Error: Kubernetes cluster unreachable".utf8)) == nil)
    }

    @Test func initialClusterReachesTheShellOnlyWhenItIsNamesAndURLs() {
        #expect(RestoreRecipes.validInitialCluster("cp-1=https://10.0.1.10:2380"))
        #expect(RestoreRecipes.validInitialCluster("cp-1=https://10.0.1.10:2380,cp-2=https://[fd00::2]:2380"))
        for bad in ["", "cp-1=https://10.0.1.10:2380,", "cp-1=http://10.0.1.10:2380", "cp-1=https://a|b:2380",
                    "cp-1=https://a:2380\ncp-2=https://b:2380", "cp 1=https://a:2380", "x=https://a:2380;reboot"] {
            #expect(!RestoreRecipes.validInitialCluster(bad), "\(bad)")
        }
    }

    @Test func recipesQuoteTheirValues() {
        let add = RestoreRecipes.memberAdd(name: "cp-2; reboot", peerURL: "https://10.0.1.11:2380")
        #expect(add.script.contains("member add 'cp-2; reboot' --peer-urls=https://10.0.1.11:2380"))
        #expect(add.privileged)
        let rejoin = RestoreRecipes.rejoin(initialCluster: "cp-1=https://10.0.1.10:2380,cp-2=https://10.0.1.11:2380")
        #expect(rejoin.script.contains("--initial-cluster=cp-1=https://10.0.1.10:2380,cp-2=https://10.0.1.11:2380"))
        #expect(rejoin.script.contains("--initial-cluster-state=existing"))
        #expect(rejoin.stepNames.contains("wipe the etcd data directory"))
        let restore = RestoreRecipes.restore(snapshot: "/var/lib/bootstrap/backup/restore-ab.db", sha256: "ab", stamp: "20261204T101010Z")
        #expect(restore.script.contains("etcdutl snapshot restore /var/lib/bootstrap/backup/restore-ab.db"))
        #expect(restore.script.contains(".before-restore-20261204T101010Z"))
        let objects = RestoreRecipes.presentObjects(["Deployment/my-app/my-app", "Namespace/it's"])
        #expect(objects.script.contains("get Deployment my-app -o name --ignore-not-found -n my-app"))
        #expect(objects.script.contains(#"get Namespace 'it'\''s'"#))
    }

    @Test func aControlPlaneLeavesEtcdByItsPeerURL() {
        #expect(EtcdRecipes.peerURL(address: "10.0.1.12") == "https://10.0.1.12:2380")
        #expect(EtcdRecipes.peerURL(address: "fd00::12") == "https://[fd00::12]:2380")
        let c = EtcdRecipes.memberRemove(peerURL: "https://10.0.1.12:2380")
        #expect(c.privileged && c.script.contains("-v u=https://10.0.1.12:2380 '$4 == u {print $1}'"))
        #expect(c.script.contains("member remove \"$id\"") && c.script.contains("if [ -n \"$id\" ]"))
        #expect(c.stepNames.contains("etcdctl member remove (https://10.0.1.12:2380)"))
    }

    @Test func theStepsShownBeforeAsking() throws {
        let p = try plan(basePlanYAML)
        let s = appliedState(p)
        let lines = RestoreChecks.steps(Self.manifest(p, s), controlPlanes: ["cp-1", "cp-2"], workers: ["worker-1"])
        #expect(lines.first?.contains("cp-1, cp-2") == true)
        #expect(lines.contains { $0.hasPrefix("cp-1: restore the snapshot of 2026-11-21T") })
        #expect(lines.contains { $0.hasPrefix("cp-2: wipe its etcd data") })
        #expect(lines.contains("restart the kubelet on worker-1"))
        #expect(lines.last?.hasPrefix("lost: every change") == true)
        let (cps, workers) = RestoreChecks.hosts(plan: p, state: s)
        #expect(cps.map(\.name) == ["cp-1"] && workers.map(\.name) == ["worker-1"])
    }
}
