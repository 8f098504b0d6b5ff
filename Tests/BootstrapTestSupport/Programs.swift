import Foundation

/// What a program printed and how it exited.
public struct ProgramOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var all: String { stdout + stderr }

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs test programs (ssh-keygen, a shell, the built binary): the one process runner of the test targets.
public enum Program {
    /// Runs `path` and waits for it, stdin from /dev/null, reading stdout and stderr at the same time (so that
    /// neither pipe fills up and stalls it). Blocking: from async code use `runAsync`; a test body that blocks
    /// anyway runs inside `onOwnThread`. `environment` nil: this process's.
    public static func run(_ path: String, _ arguments: [String], cwd: String? = nil,
                           environment: [String: String]? = nil) throws -> ProgramOutput {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let errData = Collected()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData.set(err.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return ProgramOutput(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData.get(), as: UTF8.self))
    }

    /// `run` on a thread of its own (`offPool`): waiting for the program never holds the cooperative pool.
    public static func runAsync(_ path: String, _ arguments: [String], cwd: String? = nil,
                                environment: [String: String]? = nil) async throws -> ProgramOutput {
        try await offPool { try run(path, arguments, cwd: cwd, environment: environment) }
    }

    /// This process's environment with `changes` applied.
    public static func environment(adding changes: [String: String]) -> [String: String] {
        ProcessInfo.processInfo.environment.merging(changes) { _, new in new }
    }
}

/// Runs blocking test work (a program, key generation, waiting for a daemon to listen) on a thread of its own
/// and hands the result back: a test never holds one of the cooperative pool's few threads.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result(catching: body)) }
    }
}

/// Bytes handed from the reading thread to the waiting one.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.withLock { data = d } }
    func get() -> Data { lock.withLock { data } }
}
