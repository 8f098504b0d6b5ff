import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

@Suite struct AddonValuesTests {
    /// Every release the plan can ask for, flannel and calico alike, at the pinned chart versions.
    static func allReleases() throws -> [HelmRelease] {
        let flannel = Releases.desired(for: try everythingPlan(cni: .flannel))
        let calico = Releases.desired(for: try everythingPlan(cni: .calico))
        var byKey: [String: HelmRelease] = [:]
        for r in flannel + calico where byKey[r.key] == nil { byKey[r.key] = r }
        return byKey.values.sorted { $0.key < $1.key }
    }

    @Test func everyPinnedChartHasAVerifiedValueList() throws {
        let pinned = [Releases.flannel, Releases.tigeraOperator, Releases.metricsServer, Releases.kubePrometheusStack,
                      Releases.elasticsearch, Releases.kibana, Releases.fluentd, Releases.jaeger, Releases.dashboard]
        for chart in pinned {
            #expect(ChartValues.verified[ChartValues.key(chart)] != nil,
                    "no verified value list for \(ChartValues.key(chart)): read that version's values.yaml and add one to ChartValues")
        }
        // The fixture reaches every one of them.
        #expect(Set(try AddonValuesTests.allReleases().map { ChartValues.key($0.chart) }) == Set(pinned.map(ChartValues.key)))
    }

    /// Our values, as written to the file Helm reads, use only keys the pinned chart has.
    @Test func renderedValuesUseOnlyTheChartsKeys() throws {
        let releases = try AddonValuesTests.allReleases()
        let secrets = sampleSecrets(releases)
        var unknown: [String] = []
        for r in releases {
            let parsed = try parsedValuesFile(r, secrets: secrets)
            // The file says exactly what the release holds (secrets filled in): nothing lost or retyped.
            #expect(parsed == HelmRecipes.fill(r.values, secrets), "values file of \(r.key) does not read back as written")
            guard let paths = ChartValues.unknownPaths(in: parsed, chart: r.chart) else {
                unknown.append("\(ChartValues.key(r.chart)): no verified value list")
                continue
            }
            unknown += paths.map { "\(ChartValues.key(r.chart)): \($0)" }
        }
        #expect(unknown.isEmpty, "values the pinned charts do not have:\n\(unknown.joined(separator: "\n"))")
    }

    @Test func anUnknownKeyIsNamedWithItsChart() throws {
        var r = Releases.metricsServer(ClusterPlan.Addon(enabled: true))[0]
        r.values = r.values.merged(with: .object(["resource": .object(["limits": .object(["cpu": "1"])])]))
        #expect(ChartValues.unknownPaths(in: r.values, chart: r.chart) == ["resource.limits.cpu"])
        var other = r.chart
        other.version = "9.9.9"
        #expect(ChartValues.unknownPaths(in: r.values, chart: other) == nil)
    }

    @Test func leafPathsNameListItemsAndDottedKeys() {
        let v: JSONValue = .object([
            "args": .array(["--a", "--b"]),
            "fileConfigs": .object(["04_outputs.conf": "x"]),
            "env": .array([.object(["name": "A", "valueFrom": .object(["secretKeyRef": .object(["key": "k"])])])]),
            "empty": .object([:]),
        ])
        #expect(ChartValues.leafPaths(v) == ["args[]", "empty", "env[].name", "env[].valueFrom.secretKeyRef.key",
                                             "fileConfigs[\"04_outputs.conf\"]"])
        #expect(ChartValues.admits(["env[].*"], "env[].valueFrom.secretKeyRef.key"))
        #expect(!ChartValues.admits(["env[].*"], "envFrom[].name"))
        #expect(!ChartValues.admits(["env"], "env[].name"))
    }

    /// The plan's extra values are merged key by key over ours and reach the file; ours stay where not overridden.
    @Test func planValuesMergeDeepOverOursIntoTheFile() throws {
        let yaml = edited(everythingPlanYAML, "    monitoring: { enabled: true }\n", """
                monitoring:
                  enabled: true
                  values:
                    grafana:
                      adminUser: ops
                      service: { type: LoadBalancer }
                    prometheus:
                      prometheusSpec: { retention: 15d, resources: { limits: { memory: 4Gi } } }
                    extraThing: [1, 2]

            """)
        let withLogging = edited(yaml, "    logging: { enabled: true }\n", """
                logging:
                  enabled: true
                  values:
                    kibana: { replicas: 2, service: { nodePort: 31601 } }

            """)
        let p = try plan(withLogging, files: ["/plans/apps/my-app.yaml"])
        let releases = Releases.desired(for: p)
        let secrets = sampleSecrets(releases)

        let stack = try #require(releases.first { $0.name == "kube-prometheus-stack" })
        let v = try parsedValuesFile(stack, secrets: secrets)
        #expect(v["grafana"]?["adminUser"] == "ops")
        #expect(v["grafana"]?["service"]?["type"] == "LoadBalancer")
        #expect(v["grafana"]?["service"]?["nodePort"] == .int(30300))  // ours, kept beside the override
        #expect(v["grafana"]?["adminPassword"] == .string("sample-\(Releases.grafanaPasswordSecret)"))
        #expect(v["prometheus"]?["prometheusSpec"]?["retention"] == "15d")
        #expect(v["prometheus"]?["prometheusSpec"]?["resources"]?["limits"]?["memory"] == "4Gi")
        #expect(v["prometheus"]?["prometheusSpec"]?["resources"]?["limits"]?["cpu"] == "1")
        #expect(v["prometheus"]?["prometheusSpec"]?["resources"]?["requests"]?["memory"] == "512Mi")
        #expect(v["extraThing"] == .array([.int(1), .int(2)]))

        // Logging takes its extras per release.
        let kibana = try #require(releases.first { $0.name == "kibana" })
        let k = try parsedValuesFile(kibana, secrets: secrets)
        #expect(k["replicas"] == .int(2))
        #expect(k["service"]?["nodePort"] == .int(31601))
        #expect(k["service"]?["type"] == "NodePort")
        let es = try #require(releases.first { $0.name == "elasticsearch" })
        #expect(try parsedValuesFile(es, secrets: secrets)["replicas"] == .int(1))
    }

    /// What the lab's simulated Helm reads from the values keeps its place.
    @Test func valuesTheLabReads() throws {
        let flannel = Releases.desired(for: try everythingPlan(cni: .flannel))
        #expect(flannel[0].values["podCidr"] == "10.244.0.0/16")
        let calico = try everythingPlan(cni: .calico)
        let pools = Releases.desired(for: calico)[0].values["installation"]?["calicoNetwork"]?["ipPools"]
        #expect(pools == .array([.object(["cidr": .string(calico.spec.network.podSubnet), "encapsulation": "VXLAN",
                                          "natOutgoing": "Enabled", "nodeSelector": "all()", "blockSize": .int(26)])]))
        let es = try #require(flannel.first { $0.name == "elasticsearch" })
        #expect(es.values["replicas"] == .int(1))
        #expect(es.values["clusterName"] == nil && es.values["nodeGroup"] == nil)
    }
}
