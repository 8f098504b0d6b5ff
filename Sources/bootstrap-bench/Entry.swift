import ArgumentParser

/// `bootstrap-bench`: the measuring side of `scripts/bench`, kept out of the `bootstrap` product.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap-bench",
        abstract: "Fixtures and measurements for scripts/bench (not part of bootstrap).",
        subcommands: [FixtureCommand.self, SSHCommand.self, EngineCommand.self])
}
