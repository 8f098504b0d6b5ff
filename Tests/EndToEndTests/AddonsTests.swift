import Foundation
import BootstrapTestSupport
import Testing

extension EndToEnd {
    /// The CNI and the add-ons as Helm releases, user manifests and security defaults, on the lab.
    @Suite(.enabled(if: E2E.enabled, "end-to-end tests need root"))
    struct AddonsTests {
        static let addons = """
              addons:
                metricsServer: { enabled: true }
                monitoring: { enabled: true }
                logging: { enabled: true }
                tracing: { enabled: true }
                dashboard: { enabled: true }
              manifests: [ app.yaml ]
              namespaces:
                - name: my-app
                  defaultDeny: true
                  limitRange: true
                  access:
                    - { role: view, groups: [ developers ] }

            """

        static let pinned = [
            "flannel": "flannel-v0.26.1", "metrics-server": "metrics-server-3.12.2",
            "kube-prometheus-stack": "kube-prometheus-stack-65.1.1", "elasticsearch": "elasticsearch-8.5.1",
            "kibana": "kibana-8.5.1", "fluentd": "fluentd-0.5.2", "jaeger": "jaeger-3.3.1",
            "kubernetes-dashboard": "kubernetes-dashboard-7.10.0",
        ]

        func json(_ out: Output) throws -> Any {
            try JSONSerialization.jsonObject(with: Data(out.stdout.utf8))
        }

        func helm(_ lab: Lab, _ args: String) throws -> Output {
            try lab.exec(1, "/usr/local/bin/helm --kubeconfig /etc/kubernetes/admin.conf \(args)")
        }

        /// Release name → chart (name-version), from the lab's helm.
        func releases(_ lab: Lab) throws -> [String: String] {
            let list = try json(helm(lab, "list -A -o json")) as? [[String: Any]] ?? []
            var out: [String: String] = [:]
            for r in list { out[r["name"] as? String ?? "?"] = r["chart"] as? String }
            return out
        }

        func values(_ lab: Lab, _ release: String, _ namespace: String) throws -> [String: Any] {
            try json(helm(lab, "get values \(release) -n \(namespace) -o json")) as? [String: Any] ?? [:]
        }

        func helmUpgrades(_ lab: Lab) throws -> Int {
            try lab.journal(1).filter { $0.contains(" helm upgrade ") || $0.contains(" helm upgrade\t") }.count
        }

        @Test func everyAddonWithFlannelThenChangesAndRemovals() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.27")
                defer { lab.down() }
                let app = try String(contentsOfFile: packageRoot.appendingPathComponent("Plans/apps/my-app.yaml").path, encoding: .utf8)
                _ = try lab.writePlan(app, file: "app.yaml")
                let text = lab.plan(workers: 1) + Self.addons
                let plan = try lab.writePlan(text)

                let first = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(first.status == 0, "\(first.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                // The add-on releases ran at the same time, each with its own --wait: cp-1's log shows several
                // of them started before the first one ended, and their Helm commands each labelled with
                // their release.
                let cpLog = (try? String(contentsOfFile: (lab.work as NSString).appendingPathComponent(".bootstrap/logs/cp-1.log"),
                                         encoding: .utf8)) ?? ""
                let steps = cpLog.split(separator: "\n").filter { $0.contains(" step release ") && !$0.contains("release cni/") }
                let firstEnd = try #require(steps.firstIndex { $0.hasSuffix(" done") || $0.contains(": done in ") })
                #expect(steps[..<firstEnd].filter { $0.hasSuffix(": started") }.count >= 2, "\(steps.joined(separator: "\n"))")
                let lines = cpLog.split(separator: "\n")
                for release in Self.pinned.keys {
                    #expect(lines.contains { $0.contains("[release ") && $0.contains("helm upgrade --install \(release) ") },
                            "\(release)")
                }
                #expect(lines.contains { $0.contains(" $ [release monitoring/kube-prometheus-stack] ") })
                // Every release at its pinned chart version, with our values.
                #expect(try releases(lab) == Self.pinned)
                #expect(try values(lab, "flannel", "kube-flannel")["podCidr"] as? String == "10.244.0.0/16")
                let prom = try values(lab, "kube-prometheus-stack", "monitoring")
                let grafana = prom["grafana"] as? [String: Any]
                #expect((grafana?["service"] as? [String: Any])?["nodePort"] as? Int == 30300)
                #expect(((grafana?["resources"] as? [String: Any])?["limits"] as? [String: Any])?["memory"] as? String == "512Mi")
                #expect((try values(lab, "metrics-server", "kube-system")["args"] as? [String]) == ["--kubelet-insecure-tls"])
                // The app, the security defaults and our own objects are there.
                #expect(try lab.kubectl("get deployment my-app -n my-app").status == 0)
                #expect(try lab.kubectl("get networkpolicy default-deny -n my-app").status == 0)
                #expect(try lab.kubectl("get limitrange defaults -n my-app").status == 0)
                #expect(try lab.kubectl("get rolebinding bootstrap-view -n my-app").status == 0)
                #expect(try lab.kubectl("get service jaeger-ui -n tracing").status == 0)

                // Grafana's password: in the state, in no output or log; `show --show-secrets` reveals it.
                let secrets = ((try lab.state()["cluster"] as? [String: Any])?["secrets"] as? [String: Any]) ?? [:]
                let password = try #require((secrets["grafana-admin-password"] as? [String: Any])?["value"] as? String)
                #expect(grafana?["adminPassword"] as? String == password)
                let logs = ["cp-1", "worker-1"].map {
                    (try? String(contentsOfFile: (lab.work as NSString).appendingPathComponent(".bootstrap/logs/\($0).log"),
                                 encoding: .utf8)) ?? ""
                }.joined()
                #expect(!first.all.contains(password) && !logs.contains(password))
                let show = try lab.bootstrap(["show", "-f", plan])
                #expect(show.stdout.contains("grafana_url    = http://\(lab.address(1)):30300"), "\(show.stdout)")
                #expect(show.stdout.contains("kibana_url     = http://\(lab.address(1)):30601"))
                #expect(!show.stdout.contains(password))
                #expect(try lab.bootstrap(["show", "-f", plan, "--show-secrets"]).stdout.contains("admin / \(password)"))
                let outputs = try JSONSerialization.jsonObject(with: Data(lab.bootstrap(["show", "-f", plan, "--json"]).stdout.utf8))
                    as? [String: Any]
                #expect(((outputs?["outputs"] as? [String: Any])?["urls"] as? [String: String])?["jaeger"]
                        == "http://\(lab.address(1)):30686")

                // A second apply changes nothing.
                let before = lab.loggedCommands(host: "cp-1").count
                let second = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(second.stdout.contains("No changes."), "\(second.all)")
                for cmd in lab.loggedCommands(host: "cp-1").dropFirst(before) {
                    #expect(ApplyDestroyTests.isReadOnly(cmd), "a mutating command on a no-op apply: \(cmd)")
                }

                // One changed value: exactly one `~` in the plan and one helm upgrade in the apply.
                let moved = try lab.writePlan(text.replacingOccurrences(
                    of: "monitoring: { enabled: true }", with: "monitoring: { enabled: true, nodePorts: { grafana: 31300 } }"))
                let diff = try lab.bootstrap(["plan", "-f", moved])
                let legend: Set<Substring> = ["  + create", "  ~ update in place", "  - destroy"]
                let changeLines = diff.stdout.split(separator: "\n").filter {
                    ($0.hasPrefix("  ~ ") || $0.hasPrefix("  + ") || $0.hasPrefix("  - ")) && !legend.contains($0)
                }
                #expect(changeLines == ["  ~ addon monitoring/kube-prometheus-stack  (version 65.1.1)"], "\(diff.stdout)")
                #expect(diff.stdout.contains("changed: values.grafana.service.nodePort"))
                let upgradesBefore = try helmUpgrades(lab)
                #expect(try lab.bootstrap(["apply", "-f", moved, "--auto-approve"]).status == 0)
                #expect(try helmUpgrades(lab) == upgradesBefore + 1)
                let grafanaAfter = try values(lab, "kube-prometheus-stack", "monitoring")["grafana"] as? [String: Any]
                #expect((grafanaAfter?["service"] as? [String: Any])?["nodePort"] as? Int == 31300)

                // Disabling an add-on uninstalls it (and prunes the objects it came with); a manifest edit is an
                // update; an object removed from the file is deleted.
                let trimmed = text.replacingOccurrences(of: "tracing: { enabled: true }", with: "tracing: { enabled: false }")
                    .replacingOccurrences(of: "monitoring: { enabled: true }", with: "monitoring: { enabled: true, nodePorts: { grafana: 31300 } }")
                let disabled = try lab.writePlan(trimmed)
                let service = app.range(of: "---\napiVersion: v1\nkind: Service")!
                _ = try lab.writePlan(String(app[..<service.lowerBound]).replacingOccurrences(of: "replicas: 3", with: "replicas: 2"),
                                      file: "app.yaml")
                let diff2 = try lab.bootstrap(["plan", "-f", disabled])
                for line in ["  - addon tracing/jaeger", "  - manifest Service/tracing/jaeger-ui", "  ~ manifest Deployment/my-app/my-app",
                             "  - manifest Service/my-app/my-app"] {
                    #expect(diff2.stdout.contains(line), "missing \(line) in \(diff2.stdout)")
                }
                let third = try lab.bootstrap(["apply", "-f", disabled, "--auto-approve"])
                #expect(third.status == 0, "\(third.all)")
                #expect(try releases(lab)["jaeger"] == nil)
                #expect(try lab.kubectl("get service jaeger-ui -n tracing").status != 0)
                #expect(try lab.kubectl("get service my-app -n my-app").status != 0)
                #expect(try lab.kubectl("get deployment my-app -n my-app -o jsonpath={.spec.replicas}").stdout == "2")
                #expect(((try lab.state()["addons"] as? [String: Any])?.keys.contains("tracing/jaeger")) == false)
                #expect(try lab.bootstrap(["plan", "-f", disabled]).stdout.contains("No changes."))
            }
        }

        @Test func calicoWithIPIP() async throws {
            try await onOwnThread {
                try E2E.requireRoot()
                let lab = try Lab(hosts: 2, net: "127.0.28")
                defer { lab.down() }
                let text = lab.plan(workers: 1, cni: "calico").replacingOccurrences(
                    of: "podSubnet: 10.244.0.0/16", with: "podSubnet: 192.168.0.0/16\n    calico: { encapsulation: IPIP }")
                let plan = try lab.writePlan(text)
                let out = try lab.bootstrap(["apply", "-f", plan, "--auto-approve"])
                #expect(out.status == 0, "\(out.all)")
                #expect(try lab.nodeReadiness() == ["cp-1": true, "worker-1": true])
                #expect(try releases(lab) == ["calico": "tigera-operator-v3.28.2"])
                let installation = try values(lab, "calico", "tigera-operator")["installation"] as? [String: Any]
                let pool = ((installation?["calicoNetwork"] as? [String: Any])?["ipPools"] as? [[String: Any]])?.first
                #expect(pool?["cidr"] as? String == "192.168.0.0/16")
                #expect(pool?["encapsulation"] as? String == "IPIP")
                #expect(try lab.kubectl("get installation default").status == 0)
            }
        }
    }
}
