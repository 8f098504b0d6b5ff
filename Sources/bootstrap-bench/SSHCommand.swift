import ArgumentParser
import BootstrapEngine
import BootstrapSSH
import Foundation

/// The SSH benchmark's measuring side (`scripts/bench-ssh` drives it): the round-trip time of `true` on one
/// open session.
struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh",
        abstract: "Time a trivial command on one open SSH session (used by scripts/bench-ssh).")

    @Option var address: String
    @Option var port = 22
    @Option var user = "root"
    @Option(help: ArgumentHelp("Private key file.", valueName: "PATH")) var key: String
    @Option(help: ArgumentHelp("known_hosts file.", valueName: "PATH")) var knownHosts: String
    @Option var iterations = 1000

    func run() async throws {
        let endpoint = HostEndpoint(name: "bench", address: address, port: port, user: user, keyPath: key,
                                    useAgent: false, knownHostsPath: knownHosts)
        let options = SSHTransport.Options(notice: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        let result = try await SSHBenchmark.run(endpoint: endpoint, iterations: iterations, options: options)
        print(result.summary)
        print("median_ms=\(SSHBenchmark.Result.ms(result.median))")
    }
}
