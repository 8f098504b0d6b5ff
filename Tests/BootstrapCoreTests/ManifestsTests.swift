import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

@Suite struct ManifestsTests {
    @Test func objectsAreKeyedByKindNamespaceAndName() throws {
        let text = """
            apiVersion: v1
            kind: Namespace
            metadata: { name: shop }
            ---
            # an empty document is skipped
            ---
            apiVersion: v1
            kind: List
            items:
              - { apiVersion: v1, kind: ConfigMap, metadata: { name: a, namespace: shop } }
              - { apiVersion: v1, kind: ConfigMap, metadata: { name: b } }
            """
        let objects = try Manifests.parse(text, file: "shop.yaml")
        #expect(objects.map(\.key) == ["Namespace/shop", "ConfigMap/shop/a", "ConfigMap/default/b"])
        // Written out: what is applied says where it goes.
        #expect(objects[2].body["metadata"]?["namespace"] == .string("default"))
        #expect(objects.allSatisfy { $0.source == "shop.yaml" })
    }

    @Test func badDocumentsNameTheFileDocumentAndLine() {
        func problem(_ text: String) -> ManifestProblem? {
            do { _ = try Manifests.parse(text, file: "app.yaml"); return nil } catch { return error }
        }
        let missing = problem("apiVersion: v1\nkind: Service\nmetadata: {}\n")
        #expect(missing?.description == "app.yaml:1 (document 1): missing metadata.name")
        let second = problem("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n- just\n- a list\n")
        #expect(second?.document == 2)
        #expect(second?.message == "expected a Kubernetes object (a mapping)")
        #expect(problem("a: [unclosed\n")?.message.hasPrefix("not valid YAML") == true)
    }

    @Test func aFileObjectWinsOverAGeneratedOneButTwoFilesMayNotClash() throws {
        var p = try plan(basePlanYAML + "\n  manifests: [a.yaml, b.yaml]\n  namespaces: [{name: shop, defaultDeny: true}]\n",
                         files: ["/plans/a.yaml", "/plans/b.yaml"])
        let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: x}}\n"
        let objects = try Manifests.desired(for: p, files: ["a.yaml": ns, "b.yaml": ""])
        #expect(objects.map(\.key) == ["Namespace/shop", "NetworkPolicy/shop/default-deny"])
        #expect(objects[0].source == "a.yaml")
        #expect(throws: ManifestProblem.self) { try Manifests.desired(for: p, files: ["a.yaml": ns, "b.yaml": ns]) }
        p.spec.manifests = []
        #expect(try Manifests.desired(for: p, files: [:]).first?.source == "spec.namespaces[0]")
    }

    /// Core loads the manifest files through the reader it is given: paths resolved against the plan's
    /// directory (absolute ones as they are), each file read once; problems name the file as the plan writes it.
    @Test func loadReadsEachFileThroughTheReaderRelativeToThePlan() async throws {
        let p = try plan(basePlanYAML + "\n  manifests: [apps/a.yaml, /abs/b.yaml, apps/a.yaml]\n",
                         files: ["/plans/apps/a.yaml", "/abs/b.yaml"])
        let disk = ["/plans/apps/a.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
                    "/abs/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: a}\n"]
        let asked = Asked()
        let objects = try await Manifests.load(for: p) { path in
            await asked.add(path)
            return disk[path].map { Data($0.utf8) }
        }
        #expect(objects.map(\.key) == ["Namespace/a", "ConfigMap/a/b"])
        #expect(objects.map(\.source) == ["apps/a.yaml", "/abs/b.yaml"])
        #expect(await asked.paths == ["/plans/apps/a.yaml", "/abs/b.yaml"])

        await #expect { _ = try await Manifests.load(for: p) { _ in nil } } throws: { error in
            (error as? ManifestProblem)?.description == "apps/a.yaml: cannot be read (looked for /plans/apps/a.yaml)"
        }
        await #expect {
            _ = try await Manifests.load(for: p) { path in Data((path == "/abs/b.yaml" ? "a: b\nc: [x\n" : disk[path]!).utf8) }
        } throws: { error in
            guard let e = error as? ManifestProblem else { return false }
            return e.file == "/abs/b.yaml" && e.line != nil && e.message.hasPrefix("not valid YAML")
        }
    }

    actor Asked {
        var paths: [String] = []
        func add(_ p: String) { paths.append(p) }
    }

    @Test func namespacesAreAppliedFirst() throws {
        let objects = try Manifests.parse("""
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}}
            ---
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
            """, file: "j.json")
        #expect(Manifests.applyOrder(objects).map(\.kind) == ["Namespace", "ConfigMap"])
        let doc = Manifests.document(Manifests.applyOrder(objects))
        #expect(doc.hasPrefix("apiVersion: v1\nkind: Namespace\n"))
        #expect(doc.contains("---\n"))
    }

    @Test func securityDefaultsFromThePlan() throws {
        let p = try plan(basePlanYAML + """

              namespaces:
                - name: shop
                  defaultDeny: true
                  limitRange: { default: { memory: 1Gi } }
                  access:
                    - { role: edit, users: [alice], groups: [devs] }
            """)
        let objects = GeneratedObjects.objects(for: p)
        #expect(objects.map(\.key) == ["Namespace/shop", "NetworkPolicy/shop/default-deny", "LimitRange/shop/defaults",
                                       "RoleBinding/shop/bootstrap-edit"])
        let limits = objects[2].body["spec"]?["limits"]
        #expect(limits == .array([.object([
            "type": "Container",
            "defaultRequest": .object(["cpu": "100m", "memory": "128Mi"]),
            "default": .object(["cpu": "500m", "memory": "1Gi"]),
        ])]))
        #expect(objects[3].body["roleRef"]?["name"] == .string("edit"))
        #expect(objects[3].body["subjects"] == .array([
            .object(["kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"]),
            .object(["kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"]),
        ]))
    }

    @Test func badSecurityAndNodePortSettingsAreReported() {
        let r = load(basePlanYAML + """

              addons:
                monitoring: { enabled: true, nodePorts: { grafana: 8080, graphana: 30001 } }
                dashboard: { enabled: true, nodePorts: { dashboard: 30090 } }
                monitoring2: {}
              namespaces:
                - name: Shop
                  limitRange: { default: { cpu: lots } }
                  access: [ { role: owner, users: [a] }, { role: view } ]
            """)
        #expect(has(r, path: "spec.addons.monitoring.nodePorts.grafana", containing: "outside the cluster's NodePort range"))
        #expect(has(r, path: "spec.addons.monitoring.nodePorts.graphana", containing: "did you mean \"grafana\""))
        #expect(has(r, path: "spec.addons.monitoring2", containing: "unknown field"))
        #expect(has(r, path: "spec.namespaces[0].name", containing: "not a DNS-1123 label"))
        #expect(has(r, path: "spec.namespaces[0].limitRange.default.cpu", containing: "not a Kubernetes quantity"))
        #expect(has(r, path: "spec.namespaces[0].access[0].role", containing: "not a valid role"))
        #expect(has(r, path: "spec.namespaces[0].access[1]", containing: "names no user and no group"))
        // The default Prometheus port (30090) clashes with the dashboard's.
        #expect(has(r, path: "spec.addons.dashboard.nodePorts.dashboard", containing: "already used"))
    }

    @Test func valuesFilesCarryTheSecretOnlyWhereAsked() throws {
        let r = Releases.monitoring(ClusterPlan.Addon(enabled: true, values: .object(["grafana": .object(["adminUser": "root"])])))[0]
        #expect(r.values["grafana"]?["adminPassword"] == .string(Releases.secretPlaceholder(Releases.grafanaPasswordSecret)))
        #expect(r.values["grafana"]?["adminUser"] == .string("root"))  // the plan's values merged over ours
        let file = HelmRecipes.valuesFile(r, secrets: [Releases.grafanaPasswordSecret: Secret("s3cret-pw")])
        #expect(file.contains("adminPassword: s3cret-pw"))
        // The hash (and so the plan) does not depend on the secret.
        #expect(AddonRecord(r).values == r.values && !r.values.canonicalJSON.contains("s3cret-pw"))
    }

    @Test func quantities() {
        for ok in ["100m", "0.5", "1", "128Mi", "1Gi", "2.5G", ".5"] { #expect(Quantity.isValid(ok), "\(ok)") }
        for bad in ["", "m", "lots", "1.2.3", "10 Mi", "1gb", "-"] { #expect(!Quantity.isValid(bad), "\(bad)") }
    }
}
