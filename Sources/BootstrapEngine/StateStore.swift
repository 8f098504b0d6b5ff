import BootstrapCore
import Foundation
import Glibc

/// The state file of one cluster: load, atomic write with a backup, a journal of finished steps beside it
/// (see `StateStore+Journal.swift`), and an exclusive lock.
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
    /// The serial of the newest record on disk: the file's, or its journal's last record.
    private var lastSerial: Int = 0
    /// The open journal (-1: none open), its good length, and how many records it holds on the file.
    private var journalFD: Int32 = -1
    private var journalLength = 0
    private var journalRecords = 0
    /// Device and inode of the file as last loaded or written (nil: there was no file).
    private var diskIdentity: FileIdentity?
    private var loaded = false
    /// Test hook: throw from it to simulate a crash at that phase.
    public var faultInjection: (@Sendable (WritePhase) throws -> Void)?

    public init(path: String) { self.path = path }

    deinit {
        if lockFD >= 0 { close(lockFD) }
        if journalFD >= 0 { close(journalFD) }
    }

    /// `<plan dir>/.bootstrap/<cluster>.state.json`.
    public static func defaultPath(for plan: ClusterPlan) -> String {
        let base = plan.source.baseDirectory.isEmpty ? "." : plan.source.baseDirectory
        return (base.hasSuffix("/") ? base : base + "/") + ".bootstrap/\(plan.name).state.json"
    }

    public var isLocked: Bool { mutex.withLock { lockFD >= 0 } }

    // MARK: load

    /// The recorded state, or nil when there is no state file yet. Refuses a newer format, a corrupt file,
    /// and another cluster's file (by name, and by lineage when `expectLineage` is given). The journal's
    /// records are read on top of the file; with the lock held, they are folded into it there and then.
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
                lastSerial = 0
                diskIdentity = nil
                // A journal without its file extends nothing.
                if lockFD >= 0 { dropJournal() }
                return nil
            }
            var state = try StateStore.decode(data, path: path)
            if let n = expectName, state.cluster.name != n {
                throw StateError.wrongCluster(path: path, found: state.cluster.name, expected: n)
            }
            if let l = expectLineage, state.lineage != l {
                throw StateError.lineageMismatch(path: path, found: state.lineage, expected: l)
            }
            let journal = try StateStore.readJournal(journalPath, on: state)
            loaded = true
            diskLineage = state.lineage
            diskSerial = state.serial
            diskIdentity = identity
            state = StateStore.applying(journal.records, to: state)
            lastSerial = state.serial
            if journalFD >= 0 {
                close(journalFD)
                journalFD = -1
            }
            journalLength = journal.length
            journalRecords = journal.records.count
            if lockFD >= 0 {
                if !journal.records.isEmpty {
                    return try writeLocked(state, serial: state.serial)
                }
                // Nothing in it extends this file: stale, or empty.
                dropJournal()
            }
            return state
        }
    }

    // MARK: write

    /// Writes `state` atomically with `serial` one above the last written, and returns what was written.
    /// Needs the lock, and a `load` first when a state file already exists.
    @discardableResult
    public func write(_ state: ClusterState) async throws -> ClusterState {
        try await io.run { try self.mutex.withLock { try self.writeLocked(state, serial: nil) } }
    }

    /// Writes `state` whole with the serial the journal's last record gave it, not one above: folding the
    /// journal into the file is no new change (a plan saved against that serial still matches).
    @discardableResult
    public func fold(_ state: ClusterState) async throws -> ClusterState {
        try await io.run {
            try self.mutex.withLock {
                try self.writeLocked(state, serial: state.serial == self.lastSerial ? state.serial : nil)
            }
        }
    }

    /// Appends `changes` to the journal (fsynced before it returns) as the next serial, and returns that
    /// serial; nil when there is no state file to journal on yet (write the state whole).
    public func append(_ changes: [StateChange], lineage: String, serial: Int) async throws -> Int? {
        try await io.run { try self.mutex.withLock { try self.appendLocked(changes, lineage: lineage, serial: serial) } }
    }

    /// The checks every write makes: the lock, a load first, the same file, the same lineage.
    private func checkWritable(lineage: String) throws {
        guard lockFD >= 0 else { throw StateError.notLocked(path: path) }
        if !loaded {
            if FileManager.default.fileExists(atPath: path) { throw StateError.notLoaded(path: path) }
            loaded = true
        }
        if FileIdentity(path: path) != diskIdentity {
            let found = FileManager.default.contents(atPath: path).flatMap { try? StateStore.decode($0, path: path) }
            throw StateError.replacedByAnotherWriter(path: path, lastSerial: lastSerial, foundSerial: found?.serial)
        }
        if let l = diskLineage, l != lineage {
            throw StateError.lineageMismatch(path: path, found: l, expected: lineage)
        }
    }

    private func appendLocked(_ changes: [StateChange], lineage: String, serial: Int) throws -> Int? {
        try checkWritable(lineage: lineage)
        guard diskIdentity != nil else { return nil }
        if journalFD < 0 {
            let fd = open(journalPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            if fd < 0 { throw StateError.io(path: journalPath, operation: "cannot open", errno: errno) }
            _ = fchmod(fd, 0o600)
            // What follows the good part (a record cut short by a crash) goes; so does a journal on another file.
            if journalRecords == 0 { journalLength = 0 }
            if ftruncate(fd, off_t(journalLength)) != 0 || fsync(fd) != 0 {
                let e = errno
                close(fd)
                throw StateError.io(path: journalPath, operation: "cannot truncate", errno: e)
            }
            syncDirectory()
            journalFD = fd
        }
        let next = max(lastSerial, serial) + 1
        let record = JournalRecord(lineage: lineage, base: diskSerial, serial: next, changes: changes)
        var data: Data
        do { data = try StateStore.journalEncoder.encode(record) } catch {
            throw StateError.corrupt(path: journalPath, detail: "cannot encode a journal record: \(error)")
        }
        data.append(UInt8(ascii: "\n"))
        let failed: (String, Int32)? = data.withUnsafeBytes { buf -> (String, Int32)? in
            var off = 0
            while off < buf.count {
                let n = pwrite(journalFD, buf.baseAddress! + off, buf.count - off, off_t(journalLength + off))
                if n < 0 {
                    if errno == EINTR { continue }
                    return ("cannot write", errno)
                }
                off += n
            }
            return fdatasync(journalFD) == 0 ? nil : ("cannot fsync", errno)
        }
        if let (operation, e) = failed {
            // Never leave half a record before the next one.
            _ = ftruncate(journalFD, off_t(journalLength))
            throw StateError.io(path: journalPath, operation: operation, errno: e)
        }
        journalLength += data.count
        journalRecords += 1
        lastSerial = next
        return next
    }

    /// Removes the journal (after a whole write took its records in, or when it extends nothing).
    private func dropJournal() {
        if journalFD >= 0 {
            close(journalFD)
            journalFD = -1
        }
        unlink(journalPath)
        journalLength = 0
        journalRecords = 0
    }

    private func syncDirectory() {
        let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    /// The whole write: `serial` as given, or one above the newest on disk. Then the journal goes: its
    /// records are in the file.
    private func writeLocked(_ state: ClusterState, serial: Int?) throws -> ClusterState {
        try checkWritable(lineage: state.lineage)
        var next = state
        next.serial = serial ?? (max(lastSerial, state.serial) + 1)
        let data: Data
        do { data = try JSONEncoder.state.encode(next) } catch {
            throw StateError.corrupt(path: path, detail: "cannot encode state: \(error)")
        }
        try writeAtomically(data) { identity in
            // From the rename on, the file on disk is this one, whatever happens after.
            diskIdentity = identity
            diskLineage = next.lineage
            diskSerial = next.serial
            lastSerial = next.serial
            journalRecords = 0
        }
        // The file (and the directory entry) is on disk: the journal's records are in it.
        if journalFD >= 0 || FileManager.default.fileExists(atPath: journalPath) { dropJournal() }
        return next
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
