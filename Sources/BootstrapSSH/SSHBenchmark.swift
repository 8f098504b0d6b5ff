import BootstrapCore
import BootstrapEngine
import Foundation

/// Round-trip time of a trivial command on one open session (for `scripts/bench-ssh`).
public enum SSHBenchmark {
    public struct Result: Sendable {
        public var iterations: Int
        public var connect: Duration
        public var median: Duration
        public var p90: Duration
        public var fastest: Duration
        public var slowest: Duration

        public var summary: String {
            "open-session `true`: median \(Self.ms(median)) ms, p90 \(Self.ms(p90)) ms, min \(Self.ms(fastest)) ms, "
                + "max \(Self.ms(slowest)) ms over \(iterations) runs (connect \(Self.ms(connect)) ms)"
        }

        static func ms(_ d: Duration) -> String { String(format: "%.3f", d.seconds * 1000) }
    }

    /// Opens one session to `endpoint`, runs `true` `iterations` times on it, and closes it.
    public static func run(endpoint: HostEndpoint, iterations: Int = 1000,
                           options: SSHTransport.Options = .init()) async throws -> Result {
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

    /// `bench-ssh --address A --port P --user U --key PATH --known-hosts PATH [--iterations N]`: prints the
    /// summary line and returns an exit code. For a hidden CLI subcommand that passes its arguments through.
    public static func main(arguments: [String]) async -> Int32 {
        var values: [String: String] = [:]
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            guard word.hasPrefix("--"), i + 1 < arguments.count else {
                FileHandle.standardError.write(Data("bench-ssh: unexpected argument \(word)\n".utf8))
                return 2
            }
            values[String(word.dropFirst(2))] = arguments[i + 1]
            i += 2
        }
        guard let address = values["address"], let key = values["key"], let knownHosts = values["known-hosts"] else {
            FileHandle.standardError.write(Data(
                "usage: bench-ssh --address A [--port P] [--user U] --key PATH --known-hosts PATH [--iterations N]\n".utf8))
            return 2
        }
        let endpoint = HostEndpoint(name: values["name"] ?? "bench", address: address,
                                    port: Int(values["port"] ?? "22") ?? 22, user: values["user"] ?? "root",
                                    keyPath: key, useAgent: false, knownHostsPath: knownHosts)
        do {
            let result = try await run(endpoint: endpoint, iterations: Int(values["iterations"] ?? "1000") ?? 1000)
            print(result.summary)
            print("median_ms=\(Result.ms(result.median))")
            return 0
        } catch {
            FileHandle.standardError.write(Data("bench-ssh: \(error)\n".utf8))
            return 1
        }
    }
}
