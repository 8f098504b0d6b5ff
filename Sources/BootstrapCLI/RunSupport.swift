import ArgumentParser
import BootstrapCore
import BootstrapEngine
import BootstrapSSH
import Foundation

/// Options shared by the commands that change hosts.
struct RunOptions: ParsableArguments {
    @Flag(name: .long, help: "Do not ask for confirmation (required when stdin is not a terminal).")
    var autoApprove = false

    @Option(name: .long, help: ArgumentHelp("How many hosts to work on at once (default: the plan's spec.parallelism).",
                                            valueName: "N"))
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

    /// How to reach any host by name, address and port (`HostEndpoint.resolver`: the plan's SSH settings where
    /// it writes them, else `~/.ssh/config`, else bootstrap's defaults). Refuses host key checking turned off
    /// without `--insecure-ignore-host-keys`, and prints what the config says bootstrap cannot follow.
    static func resolver(for plan: ClusterPlan, allowInsecure: Bool) async throws -> EndpointResolver {
        let config = await sshConfig()
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
        return HostEndpoint.resolver(plan: plan, config: config, home: expand("~"))
    }

    /// The SSH transport, with the CLI's side of it: `notice` shows what it has to say (host keys added,
    /// checking off), and a key's passphrase is asked on the terminal (`PassphrasePrompt`).
    static func sshTransport(notice: @escaping @Sendable (String) -> Void = { printError($0) }) -> SSHTransport {
        SSHTransport(options: .init(passphrase: { PassphrasePrompt.ask(for: $0) }, notice: notice))
    }

    static func kubeconfigPath(for plan: ClusterPlan) -> String {
        URL(fileURLWithPath: plan.source.baseDirectory).appendingPathComponent("\(plan.name).kubeconfig").path
    }

    /// What a command that changes hosts prints through, and how Ctrl-C reaches it: the event printer (per-host
    /// logs beside the state), the run's cancellation flag (a failed write to the terminal or logs cancels the
    /// run too) and the SIGINT handler, which the caller cancels when the run ends.
    static func startRun(statePath: String, json: Bool, color: Bool)
        -> (printer: EventPrinter, flag: CancellationFlag, signals: DispatchSourceSignal)
    {
        fflush(nil)
        let logDir = URL(fileURLWithPath: statePath).deletingLastPathComponent().appendingPathComponent("logs").path
        let flag = CancellationFlag()
        // Live status lines where colour is on (a terminal, no --no-color or NO_COLOR) and the terminal can move
        // its cursor.
        let live = color && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        let printer = EventPrinter(json: json, color: color, live: live, logDirectory: logDir,
                                   onFailure: { _ in flag.cancel() })
        return (printer, flag, installInterruptHandler(flag, printer: printer))
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

    /// For a command that works on a live cluster (backup, restore): the plan, its endpoint resolver and its
    /// locked state, which must be of an applied cluster; otherwise exit 2 with `notApplied(plan)` and the
    /// lock released. The caller unlocks `store` when done.
    static func appliedCluster(file: String, statePath option: String?, lockTimeout: Int, insecure: Bool,
                               notApplied: (ClusterPlan) -> String)
        async throws -> (plan: ClusterPlan, resolve: EndpointResolver, store: StateStore, state: ClusterState,
                         statePath: String)
    {
        let (plan, _) = try await PlanInput.load(file)
        let resolve = try await resolver(for: plan, allowInsecure: insecure)
        let statePath = PlanInput.statePath(option, plan: plan)
        let (store, existing, _) = try await openState(plan: plan, statePath: option, lockTimeout: lockTimeout)
        guard let state = existing, !state.isEmpty else {
            store.unlock()
            printError("error: no cluster state at \(statePath): \(notApplied(plan))")
            throw Exit.badInput
        }
        return (plan, resolve, store, state, statePath)
    }

    static func exitCode(for report: RunReport) -> ExitCode {
        if report.cancelled { return ExitCode(130) }
        return report.succeeded ? .success : Exit.failure
    }
}
