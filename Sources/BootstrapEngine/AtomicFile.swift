import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a file could not be written: the path, what was being done, and the system error.
public struct FileWriteError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var errno: Int32

    public var description: String { "\(operation) \(path): \(FileWriteError.text(errno: errno))" }

    static func text(errno e: Int32) -> String {
        guard let p = strerror(e) else { return "error \(e)" }
        return String(cString: p)
    }
}

/// The one way bootstrap replaces a local file: a temp file beside it (same directory, so the rename stays on
/// one file system), written in full, its mode set, fsynced, renamed over the target, then the directory
/// fsynced. A reader sees the old file or the new one, never a torn one, and after a crash the new one is on
/// disk once the rename is. Used for the state (with its backup), the kubeconfig and saved plans.
public enum AtomicFile {
    /// Where `write` runs: disk waits never happen on the cooperative pool.
    public static let queue = BlockingQueue(label: "bootstrap.atomic-file")

    /// Writes `data` to `path` with `mode` on `AtomicFile.queue` (or the given one).
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o600, createDirectory: Bool = false,
                             on queue: BlockingQueue = AtomicFile.queue) async throws {
        try await queue.run { _ = try writeNow(data, to: path, mode: mode, createDirectory: createDirectory) }
    }

    /// The write itself, blocking: only for code already running on a `BlockingQueue` (the state store).
    /// `beforeRename` runs once the temp file is complete and fsynced (the state store links its backup there);
    /// `afterRename` gets the new file's identity as soon as it is in place, before the directory is fsynced.
    /// Anything they throw stops the write (before the rename: the temp file is removed, the target unchanged).
    /// Returns the identity (device, inode) of the file written.
    @discardableResult
    static func writeNow(_ data: Data, to path: String, mode: mode_t, createDirectory: Bool = false,
                         beforeRename: () throws -> Void = {},
                         afterRename: (FileIdentity?) throws -> Void = { _ in }) throws -> FileIdentity? {
        let dir = (path as NSString).deletingLastPathComponent
        if createDirectory, !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw FileWriteError(path: dir, operation: "cannot create directory", errno: errno == 0 ? EACCES : errno)
            }
        }
        let base = (path as NSString).lastPathComponent
        let tmp = (dir.isEmpty ? "" : dir + "/") + ".\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw FileWriteError(path: tmp, operation: "cannot create", errno: errno) }
        var renamed = false
        defer { if !renamed { unlink(tmp) } }
        let identity: FileIdentity?
        do {
            defer { close(fd) }
            // The mode is the file's before it gets its name: never readable by others under the target's name.
            if fchmod(fd, mode) != 0 { throw FileWriteError(path: tmp, operation: "cannot set the mode of", errno: errno) }
            if let e = FileDescriptor.writeAll(fd, data) { throw FileWriteError(path: tmp, operation: "cannot write", errno: e) }
            if fsync(fd) != 0 { throw FileWriteError(path: tmp, operation: "cannot fsync", errno: errno) }
            identity = FileIdentity(fd: fd)
        }
        try beforeRename()
        if rename(tmp, path) != 0 { throw FileWriteError(path: path, operation: "cannot replace", errno: errno) }
        renamed = true
        try afterRename(identity)
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
        return identity
    }
}

public enum FileDescriptor {
    /// Writes all of `data` to `fd` (blocking: on a `BlockingQueue`), going on after short writes and EINTR;
    /// the errno of a failed write, or nil.
    public static func writeAll(_ fd: Int32, _ data: Data) -> Int32? {
        data.withUnsafeBytes { buf -> Int32? in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                off += n
            }
            return nil
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
