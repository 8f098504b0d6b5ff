import ArgumentParser
import BootstrapCore
import BootstrapEngine
import BootstrapSSH
import Foundation

/// Options shared by the commands that change hosts.
struct RunOptions: ParsableArguments {
    @Flag(name: .long, help: "Do not ask for confirmation (required when stdin is not a terminal).")
    var autoApprove = false

    @Option(name: .long, help: "How many hosts to work on at once (default: the plan's spec.parallelism).")
    var parallelism: Int?

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for another command's state lock.", valueName: "SECONDS"))
    var lockTimeout: Int = 0

    @Flag(name: .long, help: "Print events as JSON lines instead of text.")
    var json = false

    @Flag(name: .long, help: "No colour, even on a terminal.")
    var noColor = false

    @Flag(name: .long, help: "Allow spec.ssh.hostKeyPolicy: off (host keys are not checked; a warning is printed).")
    var insecureIgnoreHostKeys = false
}

enum RunSupport {
    static func expand(_ path: String) -> String {
        guard path.hasPrefix("~") else { return path }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return home + path.dropFirst()
    }

    /// The user's SSH client configuration (`~/.ssh/config`), read off the pool; nil when there is none.
    static func sshConfig() async -> SSHConfig? {
        let path = expand("~/.ssh/config")
        guard let data = await PlanInput.contents(path) else { return nil }
        return SSHConfig.parse(String(decoding: data, as: UTF8.self), path: "~/.ssh/config")
    }

    /// The SSH settings of a host the resolver is asked about: a plan host (at the address asked for, which
    /// differs when it is being replaced), or one only the state knows (its recorded port counts as written).
    static func sshSettings(plan: ClusterPlan, config: SSHConfig?, name: String, address: String, port: Int)
        -> SSHSettings
    {
        var host = plan.spec.hosts.first { $0.name == name }
            ?? ClusterPlan.Host(name: name, address: address, role: .worker,
                                port: port == plan.spec.ssh.port ? nil : port)
        host.address = address
        return SSHSettings.resolve(plan: plan, host: host, config: config)
    }

    /// How to reach any host by name, address and port: the plan's SSH settings where it writes them, else
    /// `~/.ssh/config`, else bootstrap's defaults (see `SSHSettings`).
    static func resolver(for plan: ClusterPlan, allowInsecure: Bool) async throws -> EndpointResolver {
        let config = await sshConfig()
        let ssh = plan.spec.ssh
        // Host key checking off, from the plan or the config, needs the flag.
        var notes = config?.warnings ?? []
        for h in plan.spec.hosts {
            let s = SSHSettings.resolve(plan: plan, host: h, config: config)
            notes += s.notes.filter { !notes.contains($0) }
            if s.hostKeyPolicy.value == .off && !allowInsecure {
                let source = s.hostKeyPolicy.source == .plan("spec.ssh.hostKeyPolicy")
                    ? "spec.ssh.hostKeyPolicy is off" : "StrictHostKeyChecking no (\(s.hostKeyPolicy.source)) turns host key checking off for \(h.name)"
                printError("error: \(source); pass --insecure-ignore-host-keys to really connect without checking host keys")
                throw Exit.badInput
            }
        }
        for n in notes { printError("warning: \(n)") }
        let timeout = Duration.seconds(ssh.connectTimeout)
        return { name, address, port in
            let s = sshSettings(plan: plan, config: config, name: name, address: address, port: port)
            let knownHosts = expand(s.knownHosts.value)
            let bastion = s.bastion.value.map { b in
                HostEndpoint(name: "bastion", address: b.address.value, port: b.port.value, user: b.user.value,
                             keyPath: expand(b.keyPath.value), knownHostsPath: knownHosts,
                             hostKeyPolicy: s.hostKeyPolicy.value, connectTimeout: timeout)
            }
            return HostEndpoint(
                name: name, address: s.address.value, port: s.port.value, user: s.user.value,
                keyPath: expand(s.keyPath.value), knownHostsPath: knownHosts, hostKeyPolicy: s.hostKeyPolicy.value,
                bastion: bastion, connectTimeout: timeout)
        }
    }

    static func kubeconfigPath(for plan: ClusterPlan) -> String {
        URL(fileURLWithPath: plan.source.baseDirectory).appendingPathComponent("\(plan.name).kubeconfig").path
    }

    /// Ctrl-C: stop starting steps, stop running ones after the grace period; a second Ctrl-C exits at once.
    static func installInterruptHandler(_ flag: CancellationFlag, printer: EventPrinter) -> DispatchSourceSignal {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            if flag.isCancelled { _exit(130) }
            if Approval.isAsking {
                FileHandle.standardOutput.write(Data("\nCancelled; nothing was changed.\n".utf8))
                _exit(130)
            }
            flag.cancel()
            printer.note("interrupted: no new steps will start; running steps get \(PlanDefaults.interruptGraceSeconds)s to finish, then their remote commands are stopped (Ctrl-C again to quit now)")
        }
        source.resume()
        return source
    }

    /// Locks and loads the state, or creates a new one.
    static func openState(plan: ClusterPlan, statePath: String?, lockTimeout: Int)
        async throws -> (store: StateStore, existing: ClusterState?, state: ClusterState)
    {
        let store = StateStore(path: PlanInput.statePath(statePath, plan: plan))
        do {
            try await store.lock(command: commandLineForLock, timeout: .seconds(lockTimeout))
        } catch let e as StateError {
            printError("error: \(e)")
            throw Exit.failure
        }
        do {
            let existing = try await PlanInput.loadState(store, plan: plan)
            return (store, existing, existing ?? ClusterState(name: plan.name, toolVersion: ToolVersion.current))
        } catch {
            store.unlock()
            throw error
        }
    }

    static func exitCode(for report: RunReport) -> ExitCode {
        if report.cancelled { return ExitCode(130) }
        return report.succeeded ? .success : Exit.failure
    }
}
