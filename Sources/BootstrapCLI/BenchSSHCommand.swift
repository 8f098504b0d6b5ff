import ArgumentParser
import BootstrapSSH
import Foundation

/// Hidden: the SSH benchmark's measuring side (`scripts/bench-ssh` drives it).
struct BenchSSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ssh",
        abstract: "Time a trivial command on one open SSH session (used by scripts/bench-ssh).",
        shouldDisplay: false)

    @Argument(parsing: .captureForPassthrough, help: "--address A --port P --user U --key K --known-hosts KH --iterations N")
    var arguments: [String] = []

    func run() async throws {
        let code = await SSHBenchmark.main(arguments: arguments)
        if code != 0 { throw ExitCode(code) }
    }
}
