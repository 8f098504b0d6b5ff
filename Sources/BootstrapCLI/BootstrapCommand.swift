import ArgumentParser
import BootstrapCore
import Foundation

public struct BootstrapCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Bring up Kubernetes clusters from one declarative plan.",
        discussion: """
            A plan (YAML or JSON) says what the cluster should be: Kubernetes version, network, hosts and \
            their roles, add-ons, manifests. `bootstrap plan` compares it with the recorded state and shows \
            what would change; `bootstrap validate` checks a plan without touching anything.

            Exit codes: 0 success, 1 the operation failed, 2 bad input (an invalid plan or arguments).
            """,
        version: ToolVersion.current,
        subcommands: [PlanCommand.self, ApplyCommand.self, DestroyCommand.self, ValidateCommand.self, ShowCommand.self, ForceUnlockCommand.self,
                      VersionCommand.self, BenchFixtureCommand.self, BenchSSHCommand.self]
    )
    public init() {}

    /// Like the default entry point, but usage errors exit 2 (bad input), as every other bad input does.
    public static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Self.exit(withError: ExitCode(2))
            }
            exit(withError: error)
        }
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the tool version.",
        discussion: "Also lists the Kubernetes releases this version can install.")

    @Flag(name: .long, help: "Also list the supported Kubernetes releases.")
    var kubernetes = false

    func run() throws {
        print("bootstrap \(ToolVersion.current)")
        if kubernetes {
            for minor in KubernetesReleases.minors {
                let patches = (KubernetesReleases.supported[minor] ?? []).sorted().map { "\(minor).\($0)" }
                print("kubernetes \(minor): \(patches.joined(separator: " "))")
            }
        }
    }
}
