import ArgumentParser
import Foundation

/// `bootstrap-bench engine`: the engine alone on many in-process hosts (`EngineBenchmark`), one line per run.
struct EngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Run the real apply engine and state store against in-process hosts (used by scripts/bench engine).")

    @Option(help: "Number of hosts (3 control planes, the rest workers).")
    var hosts = 500

    @Option(help: "Multiplies every delay of the hosts' profile (1: the lab's realistic figures).")
    var scale = 0.1

    @Option(help: "Steps at once (0: as many as hosts).")
    var parallelism = 0

    @Option(help: ArgumentHelp("Directory for the state file (a new temp directory when not given).", valueName: "DIR"))
    var dir: String?

    func run() async throws {
        guard hosts >= 3, hosts <= 60000 else { throw ValidationError("--hosts must be 3…60000") }
        let base = dir ?? (NSTemporaryDirectory() + "bootstrap-bench-\(UUID().uuidString)")
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: base) } }
        // The critical path's job times, from a run of the same shape one job at a time. Every delay is
        // proportional to the scale, so a short run at a small one gives them all.
        let calibrationScale = min(scale, 0.01)
        var (_, calibration) = try await EngineBenchmark.run(
            .init(hosts: 5, scale: calibrationScale, parallelism: 1, dir: base + "/calibration"), calibrate: true)
        calibration.rescale(by: scale / calibrationScale)
        var (result, _) = try await EngineBenchmark.run(.init(hosts: hosts, scale: scale, parallelism: parallelism,
                                                             dir: base + "/run"))
        result.criticalPath = EngineBenchmark.criticalPath(hosts: hosts, calibration: calibration)
        print(result.line)
        if !result.succeeded { throw ExitCode.failure }
    }
}
