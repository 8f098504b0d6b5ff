import BootstrapCore
import Foundation
import Glibc

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
        "`\(command)` (pid \(pid) on \(hostname), since \(Timestamp.iso8601(startedAt)))"
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

extension StateStore {
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
            for file in [path, backupPath, journalPath] { tighten(file) }
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
}
