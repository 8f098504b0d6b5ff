import ArgumentParser
import BootstrapCore
import BootstrapEngine
import Foundation

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Summarise the recorded state: hosts, roles, finished steps, endpoint, add-ons.",
        discussion: """
            Name the state with --state PATH, or give the plan with -f FILE to use its default state file \
            (.bootstrap/NAME.state.json beside the plan). Secret values (bootstrap token, certificate key, \
            passwords) are shown as <redacted> unless --show-secrets is given.
            """)

    @Option(name: [.customShort("f"), .customLong("file")],
            help: ArgumentHelp("The cluster plan whose state to show; `-` reads it from stdin.", valueName: "FILE"))
    var file: String?

    @OptionGroup var stateOption: StateOption

    @Flag(name: .long, help: "Print the state as JSON.")
    var json = false

    @Flag(name: .long, help: "Show secret values instead of <redacted>.")
    var showSecrets = false

    func validate() throws {
        if file == nil && stateOption.state == nil {
            throw ValidationError("Give the plan (-f FILE) or the state file (--state PATH).")
        }
    }

    func run() throws {
        var expectName: String?
        var path = stateOption.state ?? ""
        if let file {
            let (plan, _) = try PlanInput.load(file)
            expectName = plan.name
            path = PlanInput.statePath(stateOption.state, plan: plan)
        }
        let store = StateStore(path: path)
        let loaded: ClusterState?
        do { loaded = try store.load(expectName: expectName) } catch let e as StateError {
            printError("error: \(e)")
            throw Exit.failure
        }
        guard var state = loaded else {
            if json { print("null") } else { print("No state at \(path): nothing has been applied yet.") }
            return
        }
        if !showSecrets {
            for k in state.cluster.secrets.keys { state.cluster.secrets[k]?.value = Secret("<redacted>") }
        }
        if json {
            print(PlanRenderer.json(state), terminator: "")
        } else {
            print(ShowCommand.summary(state, path: path), terminator: "")
        }
    }

    static func summary(_ s: ClusterState, path: String) -> String {
        let c = s.cluster
        let date = ISO8601DateFormatter()
        var out = "Cluster \(c.name)  (state \(path), serial \(s.serial), lineage \(s.lineage), written by bootstrap \(s.toolVersion))\n"
        var facts: [String] = []
        if let v = c.kubernetesVersion { facts.append("Kubernetes \(v)") }
        if let e = c.endpoint { facts.append("endpoint \(e)") }
        if let n = c.cni { facts.append("CNI \(n)") }
        if let p = c.podSubnet { facts.append("pods \(p)") }
        if let p = c.serviceSubnet { facts.append("services \(p)") }
        if !facts.isEmpty { out += "  " + facts.joined(separator: ", ") + "\n" }
        out += "  " + (c.initializedOn.map { "initialised on \($0)" } ?? "not initialised yet") + "\n"
        if let h = c.caCertHash { out += "  CA cert hash \(h)\n" }
        if !c.steps.isEmpty {
            let steps = c.steps
            out += "  cluster steps done: \(steps.keys.sorted().joined(separator: ", "))\n"
        }
        for (name, sec) in c.secrets.sorted(by: { $0.key < $1.key }) {
            let exp = sec.expiresAt.map { ", expires \(date.string(from: $0))" } ?? ""
            out += "  secret \(name): \(sec.value.revealed)\(exp)\n"
        }
        out += "Hosts (\(s.hosts.count)):\n"
        if s.hosts.isEmpty { out += "  none\n" }
        let width = s.hosts.keys.map(\.count).max() ?? 0
        let order = s.hosts.sorted { a, b in
            a.value.role != b.value.role ? a.value.role == .controlPlane : a.key < b.key
        }
        for (name, h) in order {
            func rank(_ k: String) -> Int { StepName(rawValue: k).flatMap { StepName.allCases.firstIndex(of: $0) } ?? 99 }
            let done = h.steps.keys.sorted { rank($0) != rank($1) ? rank($0) < rank($1) : $0 < $1 }
            let pad = String(repeating: " ", count: max(0, width - name.count))
            var line = "  \(name)\(pad)  \(h.address):\(h.port)  \(h.role.rawValue)"
            if let f = h.facts { line += "  \(f.osID) \(f.osVersion) \(f.architecture)" }
            line += "  steps done: " + (done.isEmpty ? "none" : done.joined(separator: ", "))
            out += line + "\n"
        }
        if !s.addons.isEmpty {
            out += "Add-ons (\(s.addons.count)):\n"
            for (name, a) in s.addons.sorted(by: { $0.key < $1.key }) {
                out += "  \(name): chart \(a.chart) \(a.version), release \(a.release) in \(a.namespace)\n"
            }
        }
        if !s.manifests.isEmpty {
            out += "Manifest objects (\(s.manifests.count)):\n"
            for (key, m) in s.manifests.sorted(by: { $0.key < $1.key }) { out += "  \(key)  from \(m.file)\n" }
        }
        return out
    }
}

