import BootstrapCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the state could not be read, written or locked. Every case says what to do next.
public enum StateError: Error, Sendable, Equatable, CustomStringConvertible {
    case newerFormat(path: String, found: Int, supported: Int)
    case corrupt(path: String, detail: String)
    case wrongCluster(path: String, found: String, expected: String)
    case lineageMismatch(path: String, found: String, expected: String)
    case locked(path: String, holder: LockHolder?)
    case notLocked(path: String)
    case notLoaded(path: String)
    case io(path: String, operation: String, errno: Int32)
    /// The file on disk is not the one this run last read or wrote: another writer replaced it.
    case replacedByAnotherWriter(path: String, lastSerial: Int, foundSerial: Int?)
    /// `force-unlock --force` of a lock whose holder is still running on this machine.
    case holderAlive(path: String, holder: LockHolder)
    /// The path names a directory (or another non-file).
    case notAFile(path: String, what: String)

    static func text(errno e: Int32) -> String {
        guard let p = strerror(e) else { return "error \(e)" }
        let len = strlen(p)
        return p.withMemoryRebound(to: UInt8.self, capacity: len) { String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self) }
    }

    public var description: String {
        switch self {
        case .newerFormat(let p, let f, let s):
            return "state file \(p) has format version \(f); this bootstrap reads up to \(s). Use a newer bootstrap. The file was not changed."
        case .corrupt(let p, let d):
            return "state file \(p) is not valid bootstrap state (\(d)). It was not changed; the previous copy, if any, is \(p).backup."
        case .wrongCluster(let p, let f, let e):
            return "state file \(p) belongs to cluster \"\(f)\", not \"\(e)\". Pass --state with the right file; this one was not changed."
        case .lineageMismatch(let p, let f, let e):
            return "state file \(p) has lineage \(f), but lineage \(e) was expected (another cluster's or a re-created state). It was not changed."
        case .locked(let p, let h):
            let who = h.map { " by \($0)" } ?? ""
            return "state \(p) is locked\(who). Wait for that command to finish, raise --lock-timeout, or run `bootstrap force-unlock` if its holder is gone."
        case .notLocked(let p):
            return "internal error: state \(p) written without holding its lock"
        case .notLoaded(let p):
            return "internal error: state \(p) exists but was written without being loaded first"
        case .io(let p, let op, let e):
            return "\(op) \(p): \(StateError.text(errno: e))"
        case .replacedByAnotherWriter(let p, let last, let found):
            let now = found.map { "serial \($0)" } ?? "no state"
            return "state file \(p) was replaced by another writer since this run wrote serial \(last) (it now holds "
                + "\(now)); this run stopped without overwriting it. Another bootstrap is working on this cluster "
                + "(was its lock removed with force-unlock?): let it finish, then run the command again."
        case .holderAlive(let p, let h):
            return "state \(p) is locked by \(h), which is still running on this machine; not unlocked. "
                + "Stop that command (Ctrl-C) or wait for it; force-unlock is for locks whose holder is gone."
        case .notAFile(let p, let what):
            return "\(p) is \(what), not a state file. Pass --state with the path of a state file "
                + "(NAME.state.json; by default in .bootstrap/ beside the plan)."
        }
    }
}

/// Who holds a state lock: written as JSON into the lock file.
public struct LockHolder: Sendable, Hashable, Codable, CustomStringConvertible {
    public var pid: Int32
    public var hostname: String
    public var command: String
    public var startedAt: Date

    public init(pid: Int32, hostname: String, command: String, startedAt: Date) {
        self.pid = pid
        self.hostname = hostname
        self.command = command
        self.startedAt = startedAt
    }

    public var description: String {
        let f = ISO8601DateFormatter()
        return "`\(command)` (pid \(pid) on \(hostname), since \(f.string(from: startedAt)))"
    }

    static func current(command: String) -> LockHolder {
        var buf = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buf, buf.count) == 0
            ? String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown"
        return LockHolder(pid: getpid(), hostname: host, command: command, startedAt: Date())
    }

    /// True when the holder ran on this machine and its process no longer exists.
    public var isDeadOnThisHost: Bool {
        guard hostname == LockHolder.current(command: "").hostname else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// True when the holder ran on this machine and its process still exists.
    public var isAliveOnThisHost: Bool {
        guard hostname == LockHolder.current(command: "").hostname else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}

/// The state file of one cluster: load, atomic write with a backup, and an exclusive lock.
///
/// Writes go to a temp file in the same directory, are fsynced, renamed over the state, and the directory
/// is fsynced; the previous copy stays as `FILE.backup` (replaced by a rename, so it never goes missing). The
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

    private let io = BlockingQueue(label: "bootstrap.state")
    private let mutex = NSLock()
    private var lockFD: Int32 = -1
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

    // MARK: lock

    /// Takes the lock, trying again every 100 ms until `timeout` has passed. Throws `.locked` with the
    /// holder's details. Taking it also tightens the permissions of what is already there (directory 0700
    /// when it is bootstrap's own, state, backup and lock files 0600).
    public func lock(command: String, timeout: Duration = .zero) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            if try await io.run({ try self.tryTakeLock(command: command) }) { return }
            if ContinuousClock.now >= deadline {
                let holder = await io.run { StateStore.readHolder(self.lockPath) }
                throw StateError.locked(path: path, holder: holder)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// One attempt: true when this store holds the lock now.
    private func tryTakeLock(command: String) throws -> Bool {
        try mutex.withLock {
            if lockFD >= 0 { return true }
            try ensureDirectory()
            guard let fd = try openLocked() else { return false }
            lockFD = fd
            let holder = LockHolder.current(command: command)
            let data = (try? JSONEncoder.state.encode(holder)) ?? Data()
            _ = fchmod(fd, 0o600)
            _ = ftruncate(fd, 0)
            _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            _ = fsync(fd)
            for file in [path, backupPath] { tighten(file) }
            return true
        }
    }

    /// An fd holding the lock, or nil when another holder has it.
    private func openLocked() throws -> Int32? {
        while true {
            let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            if fd < 0 { throw StateError.io(path: lockPath, operation: "cannot open lock file", errno: errno) }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let e = errno
                close(fd)
                if e == EWOULDBLOCK || e == EAGAIN { return nil }
                throw StateError.io(path: lockPath, operation: "cannot lock", errno: e)
            }
            // The file may have been removed (force-unlock) between open and flock: lock the current one.
            if let a = FileIdentity(fd: fd), a == FileIdentity(path: lockPath) { return fd }
            close(fd)
        }
    }

    /// Releases the lock (no waiting: `flock(LOCK_UN)` and `close` never block).
    public func unlock() {
        mutex.withLock {
            guard lockFD >= 0 else { return }
            _ = ftruncate(lockFD, 0)
            _ = flock(lockFD, LOCK_UN)
            close(lockFD)
            lockFD = -1
        }
    }

    static func readHolder(_ lockPath: String) -> LockHolder? {
        guard let d = FileManager.default.contents(atPath: lockPath), !d.isEmpty else { return nil }
        return try? JSONDecoder.state.decode(LockHolder.self, from: d)
    }

    public enum ForceUnlockResult: Sendable, Equatable {
        /// There was no lock file.
        case notLocked
        /// Nobody held the lock (its holder had exited); the file was removed.
        case removedStale(LockHolder?)
        /// A lock whose holder seems alive on another machine was removed because `force` was given.
        case removedLive(LockHolder?)
    }

    /// Removes the lock file when its holder is gone; with `force`, also when it is held by a process on
    /// another machine (this one cannot tell whether it still runs). A holder alive on this machine is never
    /// unlocked: two writers would then work on one cluster.
    public func forceUnlock(force: Bool) async throws -> ForceUnlockResult {
        try await io.run { try self.forceUnlockNow(force: force) }
    }

    private func forceUnlockNow(force: Bool) throws -> ForceUnlockResult {
        guard FileManager.default.fileExists(atPath: lockPath) else { return .notLocked }
        let holder = StateStore.readHolder(lockPath)
        let fd = open(lockPath, O_RDWR | O_CLOEXEC)
        if fd < 0 { throw StateError.io(path: lockPath, operation: "cannot open lock file", errno: errno) }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            unlink(lockPath)
            return .removedStale(holder)
        }
        if let holder, holder.isAliveOnThisHost { throw StateError.holderAlive(path: path, holder: holder) }
        guard force || holder?.isDeadOnThisHost == true else { throw StateError.locked(path: path, holder: holder) }
        unlink(lockPath)
        return .removedLive(holder)
    }

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

    /// Decodes state bytes, checking the format version before anything else.
    public static func decode(_ data: Data, path: String) throws -> ClusterState {
        struct Probe: Decodable { var formatVersion: Int? }
        let probe: Probe
        do { probe = try JSONDecoder.state.decode(Probe.self, from: data) } catch {
            throw StateError.corrupt(path: path, detail: "not a JSON object")
        }
        guard let version = probe.formatVersion else {
            throw StateError.corrupt(path: path, detail: "no formatVersion")
        }
        if version > ClusterState.currentFormatVersion {
            throw StateError.newerFormat(path: path, found: version, supported: ClusterState.currentFormatVersion)
        }
        do {
            return try JSONDecoder.state.decode(ClusterState.self, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw StateError.corrupt(path: path, detail: "missing \(codingPath(ctx.codingPath + [key]))")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx),
                let DecodingError.dataCorrupted(ctx) {
            throw StateError.corrupt(path: path, detail: "bad value at \(codingPath(ctx.codingPath))")
        } catch {
            throw StateError.corrupt(path: path, detail: "\(error)")
        }
    }

    static func codingPath(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: ["."])
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
    private func ensureDirectory() throws {
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
    private func tighten(_ file: String, mode: mode_t = 0o600) {
        var st = stat()
        guard stat(file, &st) == 0, st.st_mode & 0o077 != 0 else { return }
        _ = chmod(file, mode)
    }

    /// Writes the new state beside the old one and renames it over; `renamed` gets the new file's identity.
    private func writeAtomically(_ data: Data, renamed: (FileIdentity?) -> Void) throws {
        try ensureDirectory()
        let dir = directory
        let base = (path as NSString).lastPathComponent
        let prefix = (dir.isEmpty ? "" : dir + "/") + ".\(base)"
        let tmp = prefix + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw StateError.io(path: tmp, operation: "cannot create", errno: errno) }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        let identity: FileIdentity?
        do {
            defer { close(fd) }
            _ = fchmod(fd, 0o600)
            var off = 0
            let result: Int32 = data.withUnsafeBytes { buf in
                while off < buf.count {
                    let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                    if n < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    off += n
                }
                return 0
            }
            if result != 0 { throw StateError.io(path: tmp, operation: "cannot write", errno: result) }
            if fsync(fd) != 0 { throw StateError.io(path: tmp, operation: "cannot fsync", errno: errno) }
            identity = FileIdentity(fd: fd)
        }
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
        if rename(tmp, path) != 0 { throw StateError.io(path: path, operation: "cannot replace", errno: errno) }
        ok = true
        renamed(identity)
        try faultInjection?(.renamed)
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }
}

/// Which file a path names: device and inode.
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    init?(fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}

extension JSONEncoder {
    /// How state is written: sorted keys (stable diffs), ISO 8601 dates.
    static var state: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // What `.iso8601` writes, without an ICU formatter per date (a state holds one per finished step).
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(Timestamp.iso8601(date))
        }
        return e
    }
}

extension JSONDecoder {
    static var state: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            if let date = fastISO8601(text) ?? ISO8601DateFormatter().date(from: text) { return date }
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO 8601 date: \(text)")
        }
        return d
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form the state is written in, without a formatter (big states hold
/// tens of thousands of dates). Anything else returns nil and goes to `ISO8601DateFormatter`.
func fastISO8601(_ text: String) -> Date? {
    let u = Array(text.utf8)
    guard u.count == 20, u[4] == 45, u[7] == 45, u[10] == 84, u[13] == 58, u[16] == 58, u[19] == 90 else { return nil }
    func num(_ from: Int, _ len: Int) -> Int? {
        var v = 0
        for i in from..<(from + len) {
            let d = Int(u[i]) - 48
            guard d >= 0 && d <= 9 else { return nil }
            v = v * 10 + d
        }
        return v
    }
    guard let y = num(0, 4), let m = num(5, 2), let d = num(8, 2), let hh = num(11, 2), let mm = num(14, 2),
          let ss = num(17, 2), (1...12).contains(m), (1...31).contains(d), hh < 24, mm < 60, ss < 61 else { return nil }
    // Days from civil (proleptic Gregorian), after H. Hinnant.
    let yy = m <= 2 ? y - 1 : y
    let era = (yy >= 0 ? yy : yy - 399) / 400
    let yoe = yy - era * 400
    let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146097 + doe - 719468
    return Date(timeIntervalSince1970: TimeInterval(days * 86400 + hh * 3600 + mm * 60 + ss))
}
