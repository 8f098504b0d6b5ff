import ArgumentParser
import BootstrapCore
import BootstrapEngine
import Foundation

/// Exit codes shared by every command.
enum Exit {
    /// The operation failed (a refused state, a blocked plan, an I/O error).
    static let failure = ExitCode(1)
    /// Bad input: an invalid plan or arguments.
    static let badInput = ExitCode(2)
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
}

/// Colour only on a terminal, and never when NO_COLOR is set or --no-color given.
func useColor(noColor: Bool, fd: Int32 = STDOUT_FILENO) -> Bool {
    !noColor && isatty(fd) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
}

struct PlanFileOption: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("file")],
            help: ArgumentHelp("The cluster plan, YAML or JSON; `-` reads it from stdin.", valueName: "FILE"), completion: .file())
    var file: String
}

struct StateOption: ParsableArguments {
    @Option(name: .customLong("state"),
            help: ArgumentHelp("The state file (default: .bootstrap/NAME.state.json in the plan's directory).",
                               valueName: "PATH"), completion: .file())
    var state: String?
}

enum PlanInput {
    /// Reads plan, manifest and saved-plan files off the cooperative pool.
    static let files = BlockingQueue(label: "bootstrap.input")

    /// A file's bytes, or nil when it cannot be read (read on `files`).
    static func contents(_ path: String) async -> Data? {
        await files.run { FileManager.default.contents(atPath: path) }
    }

    /// The plan's text, from a file or stdin.
    static func read(_ file: String) async throws -> String {
        if file == "-" {
            let data = await files.run { FileHandle.standardInput.readDataToEndOfFile() }
            return String(decoding: data, as: UTF8.self)
        }
        guard let data = await contents(file) else {
            let why = await files.run {
                var isDir: ObjCBool = false
                return FileManager.default.fileExists(atPath: file, isDirectory: &isDir)
                    ? (isDir.boolValue ? "is a directory" : "cannot be read") : "does not exist"
            }
            printError("error: plan file \(file) \(why)")
            throw Exit.badInput
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func baseDirectory(for file: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        guard file != "-" else { return cwd }
        let url = file.hasPrefix("/") ? URL(fileURLWithPath: file) : URL(fileURLWithPath: cwd).appendingPathComponent(file)
        return url.deletingLastPathComponent().standardizedFileURL.path
    }

    static func label(for file: String) -> String { file == "-" ? "<stdin>" : file }

    /// Reads, decodes and validates the plan, on `files` (validation asks whether manifest files exist).
    static func loadResult(_ file: String) async throws -> PlanLoadResult {
        try await loadResult(text: read(file), file: file)
    }

    /// Decodes and validates `text` (read from `file`), checking its version against `recorded`.
    static func loadResult(text: String, file: String, recorded: RecordedCluster = .unknown) async -> PlanLoadResult {
        let base = baseDirectory(for: file)
        return await files.run {
            PlanLoader.load(text: text, path: file, baseDirectory: base,
                            fileExists: { FileManager.default.fileExists(atPath: $0) }, recorded: recorded)
        }
    }

    /// `validate`: the plan, checked against the state too when there is one (the version's upgrade rules); a
    /// state that cannot be read is left to `plan` and `apply`, which report it.
    static func loadResultAgainstState(_ file: String, statePath: String?) async throws -> PlanLoadResult {
        let text = try await read(file)
        let first = await loadResult(text: text, file: file)
        guard let plan = first.plan else { return first }
        let path = self.statePath(statePath, plan: plan)
        let recorded: RecordedCluster
        if await !files.run({ FileManager.default.fileExists(atPath: path) }) {
            recorded = .new
        } else if let state = try? await StateStore(path: path).load(expectName: plan.name) {
            recorded = RecordedCluster(state)
        } else {
            recorded = .unknown
        }
        return recorded == .unknown ? first : await loadResult(text: text, file: file, recorded: recorded)
    }

    /// Loads and validates against the state (`loadResultAgainstState`); prints every diagnostic. Errors → exit 2.
    static func loadAgainstState(_ file: String, statePath: String?) async throws -> (ClusterPlan, [Diagnostic]) {
        let result = try await loadResultAgainstState(file, statePath: statePath)
        printDiagnostics(result, file: file)
        guard let plan = result.plan else { throw Exit.badInput }
        return (plan, result.diagnostics)
    }

    /// Loads and validates; prints every diagnostic to stderr. Errors → exit 2.
    static func load(_ file: String) async throws -> (ClusterPlan, [Diagnostic]) {
        let result = try await loadResult(file)
        printDiagnostics(result, file: file)
        guard let plan = result.plan else { throw Exit.badInput }
        return (plan, result.diagnostics)
    }

    static func printDiagnostics(_ result: PlanLoadResult, file: String) {
        let text = result.rendered(file: label(for: file))
        if !text.isEmpty { printError(text) }
    }

    /// The Kubernetes objects bootstrap applies for the plan: generated ones and the manifest files', read
    /// off the pool (`Manifests.load`). A file that cannot be read or parsed is bad input (exit 2).
    static func objects(_ plan: ClusterPlan) async throws -> [KubeObject] {
        do {
            return try await Manifests.load(for: plan, read: contents)
        } catch {
            printError("error: manifest \(error)")
            throw Exit.badInput
        }
    }

    /// Writes `data` to `path`, mode 0600, atomically (`AtomicFile`, on `files`); a failure → exit 1.
    static func writePrivateFile(_ data: Data, to path: String) async throws {
        do {
            try await AtomicFile.write(data, to: path, mode: 0o600, on: files)
        } catch {
            printError("error: cannot write \(path): \(error)")
            throw Exit.failure
        }
    }

    static func statePath(_ option: String?, plan: ClusterPlan) -> String {
        option ?? StateStore.defaultPath(for: plan)
    }

    /// Loads the state for `plan`; a refused state file → exit 1 with the reason.
    static func loadState(_ store: StateStore, plan: ClusterPlan) async throws -> ClusterState? {
        do {
            return try await store.load(expectName: plan.name)
        } catch let e as StateError {
            printError("error: \(e)")
            throw Exit.failure
        }
    }
}

/// The command line as typed, for the lock file of the commands that write the state (apply, destroy):
/// every argument, quoted where a shell would need it (`bootstrap apply -f 'my plans/lab.yaml' --auto-approve`).
var commandLineForLock: String {
    Shell.join(["bootstrap"] + CommandLine.arguments.dropFirst())
}
