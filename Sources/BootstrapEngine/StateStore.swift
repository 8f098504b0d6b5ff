import BootstrapCore
import Foundation
import Glibc

/// The state file of one cluster: load, atomic write with a backup, and an exclusive lock.
///
/// Writes go through `AtomicFile` (a temp file in the same directory, fsynced, renamed over the state, the directory
/// fsynced); the previous copy stays as `FILE.backup` (replaced by a rename, so it never goes missing). The
/// lock is `FILE.lock`, held with `flock(2)` for as long as the process keeps it, holding who took it.
///
/// Everything that touches the disk runs on the store's own `BlockingQueue`, never on the cooperative pool;
/// the methods are `async` and resume the caller when the work is done. Waiting for a lock is `Task.sleep`.
/// Before every write the store checks that the file is still the one it last read or wrote (every writer
/// replaces it by a rename, so another writer shows as another inode): a second writer is detected and
/// refused, never overwritten.
public final class StateStore: @unchecked Sendable {
    /// Points in a write where a test can inject a failure (standing in for a crash).
    public enum WritePhase: Sendable { case tempWritten, backupLinked, renamed }

    public let path: String
    public var lockPath: String { path + ".lock" }
    public var backupPath: String { path + ".backup" }

    let io = BlockingQueue(label: "bootstrap.state")
    let mutex = NSLock()
    var lockFD: Int32 = -1
    /// Lineage and serial of the file on disk as last loaded or written (nil lineage: no file).
    private var diskLineage: String?
    private var diskSerial: Int = 0
    /// Device and inode of the file as last loaded or written (nil: there was no file).
    private var diskIdentity: FileIdentity?
    private var loaded = false
    /// Test hook: throw from it to simulate a crash at that phase.
    public var faultInjection: (@Sendable (WritePhase) throws -> Void)?

    public init(path: String) { self.path = path }

    deinit {
        if lockFD >= 0 { close(lockFD) }
    }

    /// `<plan dir>/.bootstrap/<cluster>.state.json`.
    public static func defaultPath(for plan: ClusterPlan) -> String {
        let base = plan.source.baseDirectory.isEmpty ? "." : plan.source.baseDirectory
        return (base.hasSuffix("/") ? base : base + "/") + ".bootstrap/\(plan.name).state.json"
    }

    public var isLocked: Bool { mutex.withLock { lockFD >= 0 } }

    // MARK: load

    /// The recorded state, or nil when there is no state file yet. Refuses a newer format, a corrupt file,
    /// and another cluster's file (by name, and by lineage when `expectLineage` is given).
    public func load(expectName: String?, expectLineage: String? = nil) async throws -> ClusterState? {
        try await io.run { try self.loadNow(expectName: expectName, expectLineage: expectLineage) }
    }

    private func loadNow(expectName: String?, expectLineage: String?) throws -> ClusterState? {
        try mutex.withLock {
            let identity = FileIdentity(path: path)
            guard let data = FileManager.default.contents(atPath: path) else {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                    if isDirectory.boolValue { throw StateError.notAFile(path: path, what: "a directory") }
                    // Say what really failed (it used to be taken for a permission problem).
                    let fd = open(path, O_RDONLY | O_CLOEXEC)
                    let code = fd < 0 ? errno : EIO
                    if fd >= 0 { close(fd) }
                    throw StateError.io(path: path, operation: "cannot read", errno: code)
                }
                loaded = true
                diskLineage = nil
                diskSerial = 0
                diskIdentity = nil
                return nil
            }
            let state = try StateStore.decode(data, path: path)
            if let n = expectName, state.cluster.name != n {
                throw StateError.wrongCluster(path: path, found: state.cluster.name, expected: n)
            }
            if let l = expectLineage, state.lineage != l {
                throw StateError.lineageMismatch(path: path, found: state.lineage, expected: l)
            }
            loaded = true
            diskLineage = state.lineage
            diskSerial = state.serial
            diskIdentity = identity
            return state
        }
    }

    // MARK: write

    /// Writes `state` atomically with `serial` one above the last written, and returns what was written.
    /// Needs the lock, and a `load` first when a state file already exists.
    @discardableResult
    public func write(_ state: ClusterState) async throws -> ClusterState {
        try await io.run { try self.writeNow(state) }
    }

    private func writeNow(_ state: ClusterState) throws -> ClusterState {
        try mutex.withLock {
            guard lockFD >= 0 else { throw StateError.notLocked(path: path) }
            if !loaded {
                if FileManager.default.fileExists(atPath: path) { throw StateError.notLoaded(path: path) }
                loaded = true
            }
            if FileIdentity(path: path) != diskIdentity {
                let found = FileManager.default.contents(atPath: path).flatMap { try? StateStore.decode($0, path: path) }
                throw StateError.replacedByAnotherWriter(path: path, lastSerial: diskSerial, foundSerial: found?.serial)
            }
            if let l = diskLineage, l != state.lineage {
                throw StateError.lineageMismatch(path: path, found: l, expected: state.lineage)
            }
            var next = state
            next.serial = max(diskSerial, state.serial) + 1
            let data: Data
            do { data = try JSONEncoder.state.encode(next) } catch {
                throw StateError.corrupt(path: path, detail: "cannot encode state: \(error)")
            }
            try writeAtomically(data) { identity in
                // From the rename on, the file on disk is this one, whatever happens after.
                diskIdentity = identity
                diskLineage = next.lineage
                diskSerial = next.serial
            }
            return next
        }
    }

    private var directory: String { (path as NSString).deletingLastPathComponent }

    /// Creates the state's directory (0700), or tightens it to 0700 when it is bootstrap's own `.bootstrap`
    /// directory made looser since; a directory the user chose for `--state` keeps its mode.
    func ensureDirectory() throws {
        let dir = directory
        guard !dir.isEmpty else { return }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
            if (dir as NSString).lastPathComponent == ".bootstrap" { tighten(dir, mode: 0o700) }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw StateError.io(path: dir, operation: "cannot create directory", errno: errno == 0 ? EACCES : errno)
        }
        chmod(dir, 0o700)
    }

    /// Removes group and other access from an existing file or directory (a missing one is left missing).
    func tighten(_ file: String, mode: mode_t = 0o600) {
        var st = stat()
        guard stat(file, &st) == 0, st.st_mode & 0o077 != 0 else { return }
        _ = chmod(file, mode)
    }

    /// Writes the new state beside the old one (`AtomicFile`) and renames it over, keeping the old one as the
    /// backup; `renamed` gets the new file's identity.
    private func writeAtomically(_ data: Data, renamed: (FileIdentity?) -> Void) throws {
        try ensureDirectory()
        let dir = directory
        let prefix = (dir.isEmpty ? "" : dir + "/") + ".\((path as NSString).lastPathComponent)"
        do {
            try AtomicFile.writeNow(data, to: path, mode: 0o600, beforeRename: {
                try faultInjection?(.tempWritten)
                if FileManager.default.fileExists(atPath: path) {
                    // The backup is replaced by a rename too, so that it is never missing and two links never race.
                    let backupTmp = prefix + ".backup-tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                    if link(path, backupTmp) != 0 {
                        throw StateError.io(path: backupPath, operation: "cannot keep backup", errno: errno)
                    }
                    if rename(backupTmp, backupPath) != 0 {
                        let e = errno
                        unlink(backupTmp)
                        throw StateError.io(path: backupPath, operation: "cannot keep backup", errno: e)
                    }
                }
                try faultInjection?(.backupLinked)
            }, afterRename: { identity in
                renamed(identity)
                try faultInjection?(.renamed)
            })
        } catch let e as FileWriteError {
            throw StateError.io(path: e.path, operation: e.operation, errno: e.errno)
        }
    }
}
