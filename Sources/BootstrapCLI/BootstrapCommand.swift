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
        subcommands: [PlanCommand.self, ApplyCommand.self, DestroyCommand.self, ValidateCommand.self, ShowCommand.self, BackupCommand.self, RestoreCommand.self, ForceUnlockCommand.self,
                      VersionCommand.self, CompletionCommand.self]
    )
    public init() {}

    /// Like the default entry point, but usage errors exit 2 (bad input), as every other bad input does.
    public static func main() async {
        if let message = unknownSubcommand(Array(CommandLine.arguments.dropFirst())) {
            FileHandle.standardError.write(Data((message + "\n").utf8))
            Self.exit(withError: ExitCode(2))
        }
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

extension BootstrapCommand {
    /// The error for a first argument that names no subcommand (`bootstrap aply`), with the closest one as a
    /// suggestion; nil when the arguments start with a subcommand or an option.
    static func unknownSubcommand(_ arguments: [String]) -> String? {
        guard var first = arguments.first, !first.hasPrefix("-") else { return nil }
        // `bootstrap help NAME` asks about a command too.
        if first == "help" {
            guard arguments.count > 1, !arguments[1].hasPrefix("-") else { return nil }
            first = arguments[1]
        }
        var names: [String] = []
        var shown: [String] = []
        for command in configuration.subcommands {
            let name: String = command._commandName
            names.append(name)
            if command.configuration.shouldDisplay { shown.append(name) }
        }
        guard !names.contains(first), first != "help" else { return nil }
        let hint = didYouMean(first, among: shown).map { "; did you mean '\($0)'?" } ?? ""
        return """
            error: unknown command '\(first)'\(hint)
            Usage: bootstrap <command> [options]. Commands: \(shown.joined(separator: ", ")); see 'bootstrap --help'.
            """
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the tool version; with --kubernetes, also the Kubernetes releases it can install.")

    @Flag(name: .long, help: "Also list the supported Kubernetes minor releases (any patch release the hosts' package repository has).")
    var kubernetes = false

    func run() throws {
        print("bootstrap \(ToolVersion.current)")
        if kubernetes {
            // Any patch release of these minors that the hosts' package repository has (checked in preflight).
            for minor in KubernetesReleases.minors {
                let known = KubernetesReleases.info(minor).map { " (\(minor).0–\(minor).\($0.latestPatch) known\($0.upgradeSourceOnly ? "; only as an upgrade source" : ""))" } ?? ""
                print("kubernetes \(minor).x\(known)")
            }
        }
    }
}
