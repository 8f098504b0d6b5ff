import ArgumentParser
import BootstrapCore
import BootstrapEngine
import Foundation

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Summarise the recorded state and the cluster's outputs (endpoint, kubeconfig, add-on URLs).",
        discussion: """
            Each control plane's certificate expiry and its CA's, as the last apply or renewal read them \
            (state hosts.NAME.facts.certificates; plan --refresh reads them afresh). \
            Ends with the outputs scripts want, like Terraform's: the API endpoint, the kubeconfig path (with \
            -f), and the URLs (first control plane address and NodePort) of Grafana, Prometheus, Kibana, \
            Jaeger and the Dashboard when those add-ons are installed. For an EC2 instance with a public IP \
            (spec.provider.ec2), the endpoint and URLs use that IP. With --json: {"outputs": …, "state": …}. \
            Name the state with --state PATH, or give the plan with -f FILE to use its default state file \
            (.bootstrap/NAME.state.json beside the plan). Secret values (bootstrap token, certificate key, \
            passwords) are shown as <redacted> unless --show-secrets is given.
            """)

    @Option(name: [.customShort("f"), .customLong("file")],
            help: ArgumentHelp("The cluster plan whose state to show; `-` reads it from stdin.", valueName: "FILE"), completion: .file())
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

    func run() async throws {
        var expectName: String?
        var path = stateOption.state ?? ""
        var kubeconfig: String?
        if let file {
            let (plan, _) = try await PlanInput.load(file)
            expectName = plan.name
            path = PlanInput.statePath(stateOption.state, plan: plan)
            kubeconfig = RunSupport.kubeconfigPath(for: plan)
        }
        let store = StateStore(path: path)
        let loaded: ClusterState?
        do { loaded = try await store.load(expectName: expectName) } catch let e as StateError {
            printError("error: \(e)")
            throw Exit.failure
        }
        guard let state = loaded else {
            if json { print("null") } else { print("No state at \(path): nothing has been applied yet.") }
            return
        }
        if let k = kubeconfig, !FileManager.default.fileExists(atPath: k) { kubeconfig = nil }
        if json {
            struct Document: Encodable {
                var outputs: ClusterOutputs
                var state: ClusterState
            }
            print(PlanRenderer.json(Document(
                outputs: ClusterOutputs(state, kubeconfig: kubeconfig, showSecrets: showSecrets),
                state: showSecrets ? state : StateRenderer.redacted(state))), terminator: "")
        } else {
            print(StateRenderer.summary(state, path: path, showSecrets: showSecrets, kubeconfig: kubeconfig),
                  terminator: "")
        }
    }
}
