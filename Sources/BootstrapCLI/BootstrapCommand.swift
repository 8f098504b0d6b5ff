import ArgumentParser
import BootstrapCore

public struct BootstrapCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Bring up Kubernetes clusters from one declarative plan.",
        version: ToolVersion.current,
        subcommands: [VersionCommand.self]
    )
    public init() {}
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the tool version.")
    func run() throws { print("bootstrap \(ToolVersion.current)") }
}
