import BootstrapTestSupport
import Foundation
import Testing

/// The package root, found from this file's path.
let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Every end-to-end suite is nested here, so that one end-to-end test runs at a time (each brings up a lab of
/// its own; several at once on two cores would measure the machine, not bootstrap). They still run beside the
/// other targets' tests.
@Suite(.serialized) enum EndToEnd {}

/// End-to-end tests need root (namespaces, mounts, sshd). Off root they are skipped locally, and fail in CI.
enum E2E {
    static var isRoot: Bool { getuid() == 0 }
    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] != nil }
    static var enabled: Bool { isRoot || inCI }

    static func requireRoot() throws {
        if !isRoot {
            Issue.record("end-to-end tests need root (the lab uses namespaces and mounts); CI runs as root")
            throw CancellationError()
        }
    }

    /// A test's lab network: `127.0.X` as written in the test, or `$E2E_NET_PREFIX.X` so that two checkouts can
    /// run the suite on one machine at once (`E2E_NET_PREFIX=127.40`).
    static func net(_ written: String) -> String {
        guard let prefix = ProcessInfo.processInfo.environment["E2E_NET_PREFIX"], written.hasPrefix("127.0.") else {
            return written
        }
        return prefix + "." + written.dropFirst("127.0.".count)
    }

    static var binary: String {
        ProcessInfo.processInfo.environment["BOOTSTRAP_BIN"]
            ?? packageRoot.appendingPathComponent(".build/debug/bootstrap").path
    }

    /// The release binary to test (`scripts/release` sets it), or nil.
    static var releaseBinary: String? { ProcessInfo.processInfo.environment["BOOTSTRAP_RELEASE_BIN"] }
}

typealias Output = ProgramOutput

/// Runs a program and waits for it, with `env` added to this process's environment.
@discardableResult
func runProgram(_ path: String, _ args: [String], cwd: String? = nil, env: [String: String] = [:]) throws -> Output {
    try Program.run(path, args, cwd: cwd, environment: Program.environment(adding: env))
}

/// A lab of simulated hosts (scripts/lab) in its own directory and loopback range, plus a work directory for
/// plans and state.
final class Lab: @unchecked Sendable {
    let dir: String
    let net: String
    let work: String
    let hostCount: Int

    init(hosts: Int, net: String, extra: [String] = []) throws {
        let net = E2E.net(net)
        self.net = net
        self.hostCount = hosts
        dir = "/srv/bootstrap-e2e-\(net.replacingOccurrences(of: ".", with: "-"))"
        work = NSTemporaryDirectory() + "bootstrap-e2e-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        _ = try? lab(["down"])
        let up = try lab(["up", "--hosts", "\(hosts)"] + extra)
        if up.status != 0 { throw LabError(message: "lab up failed: \(up.all)") }
    }

    struct LabError: Error, CustomStringConvertible { var message: String; var description: String { message } }

    @discardableResult
    func lab(_ args: [String]) throws -> Output {
        try runProgram("/bin/bash", [packageRoot.appendingPathComponent("scripts/lab").path] + args,
                       env: ["LAB_DIR": dir, "LAB_NET": net])
    }

    func down() {
        _ = try? lab(["down"])
        try? FileManager.default.removeItem(atPath: work)
    }

    func address(_ i: Int) -> String { "\(net).\(10 + i)" }

    /// Runs a command inside lab host `i` (1-based) as root.
    func exec(_ i: Int, _ command: String) throws -> Output { try lab(["exec", "lab-\(i)", "sh", "-c", command]) }

    /// The host's journal of tool calls: `EXIT TOOL ARGS` lines (see lab/labnode/__main__.py).
    func journal(_ i: Int) throws -> [String] {
        try exec(i, "cat /var/log/labnode/commands.log 2>/dev/null").stdout.split(separator: "\n").map(String.init)
    }

    /// kubectl on the first control plane (lab host 1).
    func kubectl(_ args: String) throws -> Output {
        try exec(1, "kubectl --kubeconfig /etc/kubernetes/admin.conf \(args)")
    }

    /// The Ready status of each node, from the API server on lab host `via` (1 by default).
    func nodeReadiness(via host: Int = 1) throws -> [String: Bool] {
        let out = try exec(host, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json")
        guard out.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any],
              let items = obj["items"] as? [[String: Any]] else { return [:] }
        var r: [String: Bool] = [:]
        for item in items {
            let name = (item["metadata"] as? [String: Any])?["name"] as? String ?? "?"
            let conds = ((item["status"] as? [String: Any])?["conditions"] as? [[String: Any]]) ?? []
            r[name] = conds.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" }
        }
        return r
    }

    /// A plan for this lab: `controlPlanes` on hosts 1…, then `workers`.
    /// `endpoint`: the control-plane endpoint (default with several control planes: lab host 1's address).
    func plan(controlPlanes: Int = 1, workers: Int, cni: String = "flannel", name: String = "e2e",
              skip: Set<Int> = [], endpoint: String? = nil) -> String {
        var hosts = ""
        var i = 0
        for c in 1...controlPlanes {
            i += 1
            if skip.contains(i) { continue }
            hosts += "    - { name: cp-\(c), address: \(address(i)), role: control-plane }\n"
        }
        for w in 0..<workers {
            i += 1
            if skip.contains(i) { continue }
            hosts += "    - { name: worker-\(w + 1), address: \(address(i)), role: worker, labels: { tier: app } }\n"
        }
        let endpoint = (endpoint ?? (controlPlanes > 1 ? "\(address(1)):6443" : nil))
            .map { "\n    controlPlaneEndpoint: \"\($0)\"" } ?? ""
        return """
            apiVersion: bootstrap.k8s.lab/v1alpha1
            kind: Cluster
            metadata:
              name: \(name)
            spec:
              kubernetes:
                version: "1.34.1"\(endpoint)
              network:
                cni: \(cni)
                podSubnet: 10.244.0.0/16
              ssh:
                user: ubuntu
                keyPath: \(dir)/id_ed25519
                knownHosts: \(dir)/known_hosts
              hosts:
            \(hosts)
            """
    }

    func writePlan(_ text: String, file: String = "plan.yaml") throws -> String {
        let path = (work as NSString).appendingPathComponent(file)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs the built `bootstrap` binary in the work directory.
    @discardableResult
    func bootstrap(_ args: [String]) throws -> Output {
        try runProgram(E2E.binary, args, cwd: work, env: ["NO_COLOR": "1"])
    }

    /// Starts the built `bootstrap` in the work directory without waiting; output goes to `output` (or nowhere).
    func startBootstrap(_ args: [String], output: Pipe? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: E2E.binary)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: work)
        p.standardOutput = output ?? FileHandle.nullDevice
        p.standardError = output ?? FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Waits until `host`'s log shows a command for which `matches` holds (or the time is up).
    func waitForCommand(host: String, timeout: TimeInterval, _ matches: (String) -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, !loggedCommands(host: host).contains(where: matches) {
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    var statePath: String { (work as NSString).appendingPathComponent(".bootstrap/e2e.state.json") }

    func state() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: statePath))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// The state as bootstrap reads it: the file with its journal's records on top (`show --json`). A run
    /// killed before its end-of-run fold left its last records only in the journal.
    func stateAsRead() throws -> [String: Any] {
        let out = try bootstrap(["show", "--state", statePath, "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        return doc?["state"] as? [String: Any] ?? [:]
    }

    /// Every command the per-host log recorded, whole: a multi-line script's later lines follow its
    /// time-stamped `$ ` line unstamped.
    func loggedCommands(host: String) -> [String] {
        let path = (work as NSString).appendingPathComponent(".bootstrap/logs/\(host).log")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        var commands: [String] = []
        var inCommand = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let stamped = line.count > 20 && line.dropFirst(4).first == "-" && line.dropFirst(10).first == "T"
            if stamped, let r = line.range(of: "Z $ ") {
                commands.append(String(line[r.upperBound...]))
                inCommand = true
            } else if stamped {
                inCommand = false
            } else if inCommand {
                commands[commands.count - 1] += "\n" + line
            }
        }
        return commands
    }
}
