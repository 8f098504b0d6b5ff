import BootstrapCore
import BootstrapEngine
import BootstrapSSH
import Foundation

/// Round-trip time of a trivial command on one open session (for `scripts/bench-ssh`).
enum SSHBenchmark {
    struct Result: Sendable {
        var iterations: Int
        var connect: Duration
        var median: Duration
        var p90: Duration
        var fastest: Duration
        var slowest: Duration

        var summary: String {
            "open-session `true`: median \(Self.ms(median)) ms, p90 \(Self.ms(p90)) ms, min \(Self.ms(fastest)) ms, "
                + "max \(Self.ms(slowest)) ms over \(iterations) runs (connect \(Self.ms(connect)) ms)"
        }

        static func ms(_ d: Duration) -> String { String(format: "%.3f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15) }
    }

    /// Opens one session to `endpoint`, runs `true` `iterations` times on it, and closes it.
    static func run(endpoint: HostEndpoint, iterations: Int = 1000,
                           options: SSHTransport.Options) async throws -> Result {
        let clock = ContinuousClock()
        let start = clock.now
        let session = try await SSHSession.open(endpoint, options: options)
        let connect = clock.now - start
        var times: [Duration] = []
        times.reserveCapacity(iterations)
        do {
            let command = ShellCommand(["true"], privileged: false)
            for _ in 0..<max(iterations, 1) {
                let t0 = clock.now
                let result = try await session.run(command)
                times.append(clock.now - t0)
                guard result.succeeded else {
                    throw SSHError(.channel, host: endpoint.label,
                                   message: "host \(endpoint.label): `true` exited with \(result.exitStatus)")
                }
            }
        } catch {
            await session.close()
            throw error
        }
        await session.close()
        times.sort()
        return Result(iterations: times.count, connect: connect, median: times[times.count / 2],
                      p90: times[min(times.count - 1, times.count * 9 / 10)], fastest: times[0],
                      slowest: times[times.count - 1])
    }
}
