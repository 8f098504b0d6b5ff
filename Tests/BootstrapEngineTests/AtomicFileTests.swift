import Foundation
import Testing
@testable import BootstrapEngine

/// The one atomic file write (state, kubeconfig, saved plans).
@Suite struct AtomicFileTests {
    func leftovers(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".tmp-") }
    }

    @Test func writesTheContentWithExactlyTheModeAsked() async throws {
        let dir = TempDir()
        let path = dir.path + "/kubeconfig"
        try await AtomicFile.write(Data("one\n".utf8), to: path, mode: 0o640)
        #expect(FileManager.default.contents(atPath: path) == Data("one\n".utf8))
        // Not what open(2) with the umask would give (0600 & ~umask): the mode is set on the file itself.
        #expect(mode(path) == 0o640)
        try await AtomicFile.write(Data("two".utf8), to: path, mode: 0o600)
        #expect(mode(path) == 0o600)
        #expect(leftovers(dir.path).isEmpty)
    }

    @Test func replacesTheFileByARenameNeverInPlace() async throws {
        let dir = TempDir()
        let path = dir.path + "/plan.json"
        try await AtomicFile.write(Data(repeating: 65, count: 100_000), to: path, mode: 0o600)
        let before = try #require(FileIdentity(path: path))
        // A reader holding the old file keeps reading the old content whole.
        let reader = try #require(FileHandle(forReadingAtPath: path))
        defer { try? reader.close() }
        try await AtomicFile.write(Data("short".utf8), to: path, mode: 0o600)
        #expect(FileIdentity(path: path) != before)
        #expect(try reader.readToEnd() == Data(repeating: 65, count: 100_000))
        #expect(FileManager.default.contents(atPath: path) == Data("short".utf8))
    }

    @Test func aFailureBeforeTheRenameLeavesTheOldFileAndNoTempFile() throws {
        let dir = TempDir()
        let path = dir.path + "/state.json"
        try AtomicFile.writeNow(Data("old".utf8), to: path, mode: 0o600)
        struct Crash: Error {}
        var sawComplete = false
        #expect(throws: Crash.self) {
            try AtomicFile.writeNow(Data("new".utf8), to: path, mode: 0o600, beforeRename: {
                // The temp file is complete and beside the target when the hook runs.
                let tmp = leftovers(dir.path)
                sawComplete = tmp.count == 1
                    && FileManager.default.contents(atPath: dir.path + "/" + tmp[0]) == Data("new".utf8)
                throw Crash()
            })
        }
        #expect(sawComplete)
        #expect(FileManager.default.contents(atPath: path) == Data("old".utf8))
        #expect(leftovers(dir.path).isEmpty)
    }

    @Test func afterTheRenameTheHookGetsTheNewFilesIdentity() throws {
        let dir = TempDir()
        let path = dir.path + "/state.json"
        var seen: FileIdentity?
        let returned = try AtomicFile.writeNow(Data("x".utf8), to: path, mode: 0o600, afterRename: { seen = $0 })
        #expect(seen != nil && seen == returned && seen == FileIdentity(path: path))
    }

    @Test func aMissingDirectoryIsAnErrorNamingThePathUnlessAskedToCreateIt() async throws {
        let dir = TempDir()
        let path = dir.path + "/sub/dir/file"
        await #expect {
            try await AtomicFile.write(Data("x".utf8), to: path, mode: 0o600)
        } throws: { error in
            guard let e = error as? FileWriteError else { return false }
            return e.errno == ENOENT && e.path.hasPrefix(dir.path + "/sub/dir/.file.tmp-")
                && e.description.contains("cannot create") && e.description.contains("No such file or directory")
        }
        try await AtomicFile.write(Data("x".utf8), to: path, mode: 0o600, createDirectory: true)
        #expect(FileManager.default.contents(atPath: path) == Data("x".utf8))
        #expect(mode(dir.path + "/sub/dir") == 0o700)
    }

    @Test func concurrentWritersNeverLeaveATornFile() async throws {
        let dir = TempDir()
        let path = dir.path + "/state.json"
        let contents = (0..<16).map { i in Data(repeating: UInt8(65 + i), count: 50_000 + i) }
        let queues = (0..<4).map { BlockingQueue(label: "test.writer-\($0)") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, data) in contents.enumerated() {
                group.addTask { try await AtomicFile.write(data, to: path, mode: 0o600, on: queues[i % 4]) }
            }
            try await group.waitForAll()
        }
        let final = try #require(FileManager.default.contents(atPath: path))
        #expect(contents.contains(final))
        #expect(leftovers(dir.path).isEmpty)
    }
}
